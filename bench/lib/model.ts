// Result model shared by the workloads and the report.

export type ServerKind = 'samba' | 'tessera';
export const serverKinds: readonly ServerKind[] = ['samba', 'tessera'];

export type WorkloadId = 'seq' | 'rand' | 'meta' | 'echo';
export const workloadIds: readonly WorkloadId[] = ['seq', 'rand', 'meta', 'echo'];

/** One server's figures for one row. */
export interface Measure {
  /** The row's rate (higher is better), or null when the run failed. */
  value: number | null;
  /** Server CPU per unit of work (seconds per GiB, or microseconds per operation); lower is better. */
  cpu: number | null;
  /** Tool output and derived figures (latency percentiles, smbclient's own rate, ...). */
  detail: Record<string, unknown>;
  error?: string;
}

export interface Row {
  id: string;
  label: string;
  results: Partial<Record<ServerKind, Measure>>;
}

export interface Table {
  workload: WorkloadId;
  title: string;
  /** Unit of Measure.value, e.g. "GiB/s". */
  unit: string;
  /** Unit of Measure.cpu, e.g. "CPU s/GiB". */
  cpuUnit: string;
  /** Name of the detail column and how to render it from a Measure. */
  detailColumn?: { title: string; render: (m: Measure) => string };
  rows: Row[];
  notes: string[];
}

export function failed(error: string): Measure {
  return { value: null, cpu: null, detail: {}, error };
}
