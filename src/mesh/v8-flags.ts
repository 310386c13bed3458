// V8 in Node 20 can abort the process ("unreachable code" in the deoptimizer) when it deoptimizes
// a function while the WebAssembly call inlined into it runs. Cedar decisions are such calls, and
// an owner node making tens of thousands of them died this way. Without that inlining a decision
// costs the same (measured: about 150 to 190 µs either way), so it is turned off before the first
// decision.

import v8 from 'node:v8'

v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls')
