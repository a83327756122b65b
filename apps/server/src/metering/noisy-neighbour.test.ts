import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { NoisyNeighbourDetector, robustZScore } from './noisy-neighbour.ts';

/**
 * Robust z-scores against each tenant's own trailing baseline: a steady tenant raises
 * nothing, a tenant that jumps far above its own median does, a tenant that is always busy
 * is not flagged for being busy, and a single past burst does not move the baseline.
 */
const minuteMs = 60_000;
const start = Date.UTC(2026, 10, 26, 6, 0, 0);
const busy = '0195a3c0-0000-7000-8000-000000000001';
const steady = '0195a3c0-0000-7000-8000-000000000002';

function requests(detector: NoisyNeighbourDetector, tenantId: string, quantity: number) {
  detector.observe({
    id: 'x',
    tenantId,
    tier: 'starter',
    metric: 'requests',
    quantity,
    occurredAt: new Date(),
    properties: {},
  });
}

describe('robustZScore', () => {
  it('ignores one outlier in the baseline and floors the MAD', () => {
    const baseline = [100, 102, 98, 101, 99, 100, 5_000];
    const score = robustZScore(baseline, 100, 5);
    expect(score.median).toBe(100);
    expect(Math.abs(score.z)).toBeLessThan(1);
    expect(robustZScore([10, 10, 10], 20, 5).mad).toBe(5);
  });
});

describe('NoisyNeighbourDetector', () => {
  it('alerts when a tenant jumps far above its own baseline, and only that tenant', () => {
    const detector = new NoisyNeighbourDetector(pino({ level: 'silent' }), start);
    let now = start;
    for (let minute = 0; minute < 15; minute++) {
      requests(detector, busy, 1_000 + (minute % 3) * 10); // a big but steady tenant
      requests(detector, steady, 200 + (minute % 2) * 5);
      now += minuteMs;
      expect(detector.tick(now)).toEqual([]);
    }
    requests(detector, busy, 1_010); // the big tenant as usual
    requests(detector, steady, 5_000); // the small tenant suddenly 25× its baseline
    now += minuteMs;
    const raised = detector.tick(now);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      tenantId: steady,
      metric: 'requests',
      observedPerMinute: 5_000,
      baselineMedian: 200,
    });
    expect(raised[0]?.zScore).toBeGreaterThan(100);
    expect(detector.alerts()[0]?.tenantId).toBe(steady);
  });

  it('waits for a baseline before alerting and ignores rates under the floor', () => {
    const detector = new NoisyNeighbourDetector(pino({ level: 'silent' }), start);
    requests(detector, busy, 50_000); // first minute ever: no baseline yet
    expect(detector.tick(start + minuteMs)).toEqual([]);
    let now = start + minuteMs;
    for (let minute = 0; minute < 12; minute++) {
      requests(detector, steady, 1);
      now += minuteMs;
      detector.tick(now);
    }
    requests(detector, steady, 100); // 100× its baseline but below the 120/minute floor
    expect(detector.tick(now + minuteMs)).toEqual([]);
  });
});
