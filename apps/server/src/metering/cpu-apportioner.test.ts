import { describe, expect, it } from 'vitest';
import { CpuApportioner } from './cpu-apportioner.ts';

/** The process CPU of a window is shared by the tenants' request wall time, exactly. */
describe('CpuApportioner', () => {
  it('splits the window’s CPU by wall time and attributes every microsecond', () => {
    let cpuUs = 1_000;
    const cpu = new CpuApportioner(() => cpuUs);
    cpu.addRequest('a', 'starter', 300);
    cpu.addRequest('b', 'starter', 100);
    cpu.addRequest('a', 'starter', 300);
    cpuUs += 7_001;
    const shares = cpu.tick();
    expect(shares).toEqual([
      { tenantId: 'a', tier: 'starter', computeUs: 6_001 },
      { tenantId: 'b', tier: 'starter', computeUs: 1_000 },
    ]);
    expect(shares.reduce((sum, share) => sum + share.computeUs, 0)).toBe(7_001);
  });

  it('leaves CPU of a window without tenant requests unattributed', () => {
    let cpuUs = 0;
    const cpu = new CpuApportioner(() => cpuUs);
    cpuUs = 5_000;
    expect(cpu.tick()).toEqual([]);
    cpu.addRequest('a', 'starter', 10);
    cpuUs = 5_500;
    expect(cpu.tick()).toEqual([{ tenantId: 'a', tier: 'starter', computeUs: 500 }]);
  });
});
