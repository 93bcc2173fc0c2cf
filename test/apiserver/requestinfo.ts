// Turns a URL and method into kube's RequestInfo (verb, group, version, resource, ...),
// the same decomposition kube-apiserver uses for authorization and routing.

export interface RequestInfo {
  isResource: boolean;
  verb: string;
  path: string;
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function requestInfo(method: string, url: URL): RequestInfo {
  const path = url.pathname;
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const nonResource: RequestInfo = { isResource: false, verb: method.toLowerCase(), path, group: '', version: '', resource: '' };
  let rest: string[];
  let group = '';
  let version: string;
  if (parts[0] === 'api' && parts.length >= 2) {
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else return nonResource;
  if (rest.length === 0) return { ...nonResource, group, version };

  const info: RequestInfo = { isResource: true, verb: '', path, group, version, resource: '' };
  if (rest[0] === 'namespaces' && rest.length > 1) {
    info.namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  info.resource = rest[0]!;
  if (rest.length > 1) info.name = rest[1];
  if (rest.length > 2) info.subresource = rest[2];

  const watch = ['1', 'true'].includes(url.searchParams.get('watch') ?? '');
  switch (method) {
    case 'GET':
    case 'HEAD':
      info.verb = watch ? 'watch' : info.name ? 'get' : 'list';
      break;
    case 'POST':
      info.verb = 'create';
      break;
    case 'PUT':
      info.verb = 'update';
      break;
    case 'PATCH':
      info.verb = 'patch';
      break;
    case 'DELETE':
      info.verb = info.name ? 'delete' : 'deletecollection';
      break;
    default:
      info.verb = method.toLowerCase();
  }
  return info;
}
