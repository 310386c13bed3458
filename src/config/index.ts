// The configuration layer: YAML node configuration, its validation and the printed mount commands.

export { ConfigError } from './errors.js'
export type { ConfigErrorOptions } from './errors.js'
export { advertisedHost, formatExports, mountCommand } from './exports.js'
export { pathsOverlap, workspaceRoot } from './paths.js'
export { embeddedDefaultConfig, embeddedDefaultSource, embeddedDefaultYaml, loadConfigFile, parseConfigText } from './load.js'
export type { ParseOptions } from './load.js'
export { defaults, maxRecordBytesRange, overrideSource, validateConfig } from './schema.js'
export type {
  AccessMode,
  ConfigOverrides,
  NodeConfig,
  StorageClass,
  ValidateOptions,
  VolumeConfig,
  VolumeType
} from './schema.js'
export { formatSize, parseSize } from './size.js'
export { meshDefaults, readDuration, readPeerId } from './mesh.js'
export type { MeshConfig, SharedVolumeConfig } from './mesh.js'
export { secretsKeys, vaultDefaults, vaultTimeoutRange } from './secrets.js'
export type { CredentialSource, SecretsConfig, VaultAuthConfig, VaultConfig } from './secrets.js'
export { envReferencePattern, secretReferencePattern } from './backends.js'
export { accessModes, opendalProviders, storageClasses, volumeTypes } from './volume.js'
