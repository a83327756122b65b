import { describe, expect, it } from 'vitest';
import { newEventId } from './event-ids.ts';

/** Event ids are valid version-7 UUIDs, ordered by time, and do not repeat. */
describe('newEventId', () => {
  it('makes unique v7 uuids that sort by time', () => {
    const ids = Array.from({ length: 20_000 }, (_, index) => newEventId(1_700_000_000_000 + Math.floor(index / 100)));
    for (const id of ids.slice(0, 50))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]?.slice(0, 13)).toBe('018bcfe5-6800');
    expect(newEventId(1_700_000_000_001) > newEventId(1_700_000_000_000)).toBe(true);
  });
});
