// The registry client's public face.
export { RegistryClient, MEDIA_TYPES, CREATED_ANNOTATION, type RegistryClientOptions, type ResolvedManifest } from './client.ts';
export { RegistryError, type RegistryErrorKind } from './errors.ts';
export { parseChallenges, type Challenge } from './auth.ts';
export { parseRfc3339 } from './rfc3339.ts';
