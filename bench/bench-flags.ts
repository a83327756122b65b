/**
 * Command-line flags shared by the benchmarks. Each bench declares its flags with
 * `parseArgs` (strings with defaults) and reads the whole-number ones through `intFlag`, so a
 * bad value stops the run before it starts anything, with the same message everywhere.
 */
export function intFlag<Flags extends Record<string, unknown>>(
  flags: Flags,
  name: keyof Flags & string,
  min: number,
  max: number,
): number {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be ${min}..${max}`);
  return value;
}
