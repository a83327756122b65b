import fs from 'node:fs/promises';

/** CPU seconds (user + system) a process has used, from /proc on Linux; null elsewhere or when it is gone. */
export async function processCpuSeconds(pid: number | string | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Fields after the command name: state is the 1st, utime the 12th, stime the 13th (USER_HZ = 100).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
