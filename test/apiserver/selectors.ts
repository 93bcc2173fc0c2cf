// Label and field selectors, parsed with the grammar of k8s.io/apimachinery labels.Parse /
// fields.ParseSelector (the subset clients send: =, ==, !=, in, notin, exists, !exists, <, >).

import { badRequest } from './errors.ts';
import type { KubeObject, ResourceType } from './types.ts';

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' }
  | { key: string; op: 'gt' | 'lt'; value: number };

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkKey(key: string, whole: string): string {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}": in selector "${whole}"`);
  return key;
}
function checkValue(v: string, whole: string): string {
  if (!VALUE.test(v) || v.length > 63) throw badRequest(`unable to parse requirement: invalid label value: "${v}": in selector "${whole}"`);
  return v;
}

export function parseLabelSelector(selector: string): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  if (selector.trim() === '') return reqs;
  for (const raw of splitTop(selector)) {
    const part = raw.trim();
    let m: RegExpMatchArray | null;
    if (part === '') throw badRequest(`unable to parse requirement: found '', expected: identifier in selector "${selector}"`);
    if ((m = part.match(/^!\s*(\S+)$/))) reqs.push({ key: checkKey(m[1]!, selector), op: '!exists' });
    else if ((m = part.match(/^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      const values = m[3]!.split(',').map((v) => checkValue(v.trim(), selector));
      reqs.push({ key: checkKey(m[1]!, selector), op: m[2] as 'in' | 'notin', values });
    } else if ((m = part.match(/^([^=!<>\s]+)\s*(==|=|!=)\s*(.*)$/))) {
      const value = checkValue(m[3]!.trim(), selector);
      reqs.push({ key: checkKey(m[1]!, selector), op: m[2] === '!=' ? 'notin' : 'in', values: [value] });
    } else if ((m = part.match(/^([^=!<>\s]+)\s*([<>])\s*(-?\d+)$/))) {
      reqs.push({ key: checkKey(m[1]!, selector), op: m[2] === '>' ? 'gt' : 'lt', value: Number(m[3]) });
    } else if (KEY.test(part)) reqs.push({ key: part, op: 'exists' });
    else throw badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt in selector "${selector}"`);
  }
  return reqs;
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'gt':
        return has && Number(v) > r.value;
      case 'lt':
        return has && Number(v) < r.value;
    }
  });
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

/** Unescapes `\,` `\=` `\\` the way fields.ParseSelector does. */
function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function parseFieldSelector(selector: string, type: ResourceType): FieldRequirement[] {
  if (selector.trim() === '') return [];
  return splitUnescaped(selector, ',').map((part) => {
    const m = part.match(/^([^=!]+?)\s*(==|=|!=)(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    if (field !== 'metadata.name' && !(field === 'metadata.namespace' && type.namespaced) && !type.fieldLabels[field]) {
      throw badRequest(type.fieldLabelError(field));
    }
    return { field, op: m[2] === '!=' ? '!=' : '=', value: unescape(m[3]!) };
  });
}

export function fieldValue(type: ResourceType, obj: KubeObject, field: string): string {
  if (field === 'metadata.name') return obj.metadata.name ?? '';
  if (field === 'metadata.namespace') return obj.metadata.namespace ?? '';
  return type.fieldLabels[field]?.(obj) ?? '';
}

export function matchFields(type: ResourceType, reqs: FieldRequirement[], obj: KubeObject): boolean {
  return reqs.every((r) => (fieldValue(type, obj, r.field) === r.value) === (r.op === '='));
}

/** Combined predicate for a list or watch request. */
export function selectorPredicate(type: ResourceType, query: URLSearchParams): { pred: (o: KubeObject) => boolean; filtered: boolean } {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(query.get('fieldSelector') ?? '', type);
  return {
    pred: (o) => matchLabels(labels, o.metadata.labels) && matchFields(type, fields, o),
    filtered: labels.length > 0 || fields.length > 0,
  };
}
