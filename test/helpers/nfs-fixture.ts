// Starts a test node and mounts one of its volumes with a fresh Nfs3Client.

import { Nfs3Client } from './nfs3.js'
import { localVolumeYaml, startTestNode, type TestNode } from './node.js'

export interface MountedNode {
  node: TestNode
  nfs: Nfs3Client
  /** The root handle of the first volume. */
  root: Buffer
  /** Stops the client and the node. */
  stop(): Promise<void>
}

/** Starts a node with the given volumes (a single read-write `scratch` by default) and mounts `mountPath`. */
export async function startMounted(options: { volumesYaml?: string; nfsYaml?: string; dataDir?: string; mountPath?: string } = {}): Promise<MountedNode> {
  const node = await startTestNode({
    volumesYaml: options.volumesYaml ?? localVolumeYaml('scratch'),
    nfsYaml: options.nfsYaml,
    dataDir: options.dataDir
  })
  const nfs = await Nfs3Client.connect(node.port)
  const root = await nfs.mount(options.mountPath ?? '/scratch')
  return {
    node,
    nfs,
    root,
    stop: async () => {
      nfs.close()
      await node.stop()
    }
  }
}
