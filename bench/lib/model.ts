// Result model shared by the workloads and the report.

/**
 * What a column measures: Samba (the reference), Tessera with the posix driver, and Tessera with a
 * chunked share on a local-directory object store ('chunked') or on a Ceph RGW ('rgw'), both with
 * the local metadata log.
 */
export type ServerKind = 'samba' | 'tessera' | 'chunked' | 'rgw';
export const serverKinds: readonly ServerKind[] = ['samba', 'tessera', 'chunked', 'rgw'];

/** Column titles. */
export const kindLabel: Record<ServerKind, string> = {
  samba: 'Samba',
  tessera: 'Tessera',
  chunked: 'Chunked-local',
  rgw: 'Chunked-RGW',
};

/** Targets that are chunked shares (their data files are written through SMB, not created locally). */
export const chunkedKinds: readonly ServerKind[] = ['chunked', 'rgw'];

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
  /** The targets this table has columns for (in serverKinds order; the first is the reference). */
  kinds: ServerKind[];
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
