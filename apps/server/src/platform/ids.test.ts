import { describe, expect, it } from 'vitest';
import { formatId, newPublicId, newUuid, parseId } from './ids.ts';

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids', () => {
  it('makes distinct, time-ordered UUIDv7s across many refills of the random buffer', () => {
    // 5,000 ids draw several times the 1,024 random words the buffer holds.
    const ids = Array.from({ length: 5_000 }, () => newUuid());
    for (const id of ids) expect(id).toMatch(uuidV7);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('spends its random bits: ids made in the same millisecond still differ in their random part', () => {
    const randomParts = new Set(Array.from({ length: 2_000 }, () => newUuid().slice(24)));
    expect(randomParts.size).toBe(2_000);
  });

  it('makes public ids that parse back to their uuid, and only as their own kind', () => {
    const id = newPublicId('request');
    expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    const uuid = parseId('request', id);
    expect(uuid).toMatch(uuidV7);
    expect(formatId('request', uuid ?? '')).toBe(id);
    expect(parseId('tenant', id)).toBeNull();
  });
});
