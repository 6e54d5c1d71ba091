// NDR 2.0 transfer syntax, little-endian integer representation (C706 chapter 14, MS-RPCE 2.2.5).
// Only what MS-SRVS-style interfaces need: primitives with natural alignment, unique/ref/full
// pointers with deferred pointees, [string] wchar_t* (conformant varying) and conformant arrays.
//
// Alignment is relative to the start of the stub (C706 14.2.2): the caller hands the reader a view
// that starts at the stub and the writer always starts at offset 0. Request and response stubs start
// at an 8-aligned PDU offset, so stub-relative and PDU-relative alignment agree.
//
// Deferral (C706 14.3.12.3): the pointee of an embedded pointer is marshalled after the construct
// that contains the pointer. Both classes keep a stack of "constructs"; `construct(fn)` runs fn
// (which writes/reads the scalars and registers pointees) and then drains the pointees in order,
// each in its own construct, so a pointee's own pointees follow it (depth first, as MIDL and PIDL
// marshal). Each top-level parameter is one construct (its pointees come before the next parameter).

import { MalformedError } from '../base/errors.js';
import { assert } from '../base/assert.js';

/** NDR 2.0 transfer syntax identifier (C706 appendix I / MS-RPCE 2.2.4.12). */
export const NDR20_SYNTAX_UUID = '8a885d04-1ceb-11c9-9fe8-08002b104860';
export const NDR20_SYNTAX_VERSION = 2;
/** NDR64 transfer syntax identifier (MS-RPCE 2.2.4.12). Recognised so it can be refused. */
export const NDR64_SYNTAX_UUID = '71710533-beba-4937-8319-b5dbef9ccc36';
export const NDR64_SYNTAX_VERSION = 1;

/** Default caps; a reader may be given tighter ones. */
export const NDR_ARRAY_COUNT_MAX = 65_536;
/** [string] wchar_t* units including the terminator (MS-FSCC 2.1.5 paths are at most 32767 units). */
export const NDR_STRING_UNITS_MAX = 32_768;
/** Pointees one reader may follow in total: bounds work on hostile input. */
export const NDR_POINTEES_MAX = 1_048_576;

/** A pointee read later: `value` is null for a null pointer and filled when the construct drains. */
export interface NdrRef<T> {
  value: T | null;
}

const REFERENT_ID_FIRST = 0x0002_0000; // what MIDL and PIDL use; any non-zero value is valid
const REFERENT_ID_STEP = 4;

export interface NdrReaderCaps {
  arrayCountMax?: number;
  stringUnitsMax?: number;
  pointeesMax?: number;
}

export class NdrReader {
  private pos = 0;
  private readonly deferred: Array<Array<() => void>> = [];
  private readonly fullPointees = new Map<number, NdrRef<unknown>>();
  private pointees = 0;
  private readonly arrayCountMax: number;
  private readonly stringUnitsMax: number;
  private readonly pointeesMax: number;

  constructor(
    private readonly buf: Buffer,
    caps: NdrReaderCaps = {},
  ) {
    this.arrayCountMax = caps.arrayCountMax ?? NDR_ARRAY_COUNT_MAX;
    this.stringUnitsMax = caps.stringUnitsMax ?? NDR_STRING_UNITS_MAX;
    this.pointeesMax = caps.pointeesMax ?? NDR_POINTEES_MAX;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new MalformedError(`ndr: ${what} needs ${n} bytes at ${this.pos}, stub has ${this.buf.length}`);
    }
  }

  /** Skips padding up to a multiple of n (C706 14.2.2). Padding content is not checked. */
  align(n: 1 | 2 | 4 | 8): void {
    const pad = (n - (this.pos % n)) % n;
    this.need(pad, 'alignment');
    this.pos += pad;
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.align(2);
    this.need(2, 'u16');
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.align(4);
    this.need(4, 'u32');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.align(4);
    this.need(4, 'i32');
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.align(8);
    this.need(8, 'u64');
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** n raw bytes as a view (no copy). */
  bytes(n: number): Buffer {
    this.need(n, 'bytes');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Runs fn, then reads the pointees it registered, each followed by its own pointees. */
  construct<T>(fn: () => T): T {
    this.deferred.push([]);
    let result: T;
    let queue: Array<() => void>;
    try {
      result = fn();
    } finally {
      queue = this.deferred.pop()!;
    }
    for (const readPointee of queue) this.construct(readPointee);
    return result;
  }

  private defer(readPointee: () => void): void {
    if (++this.pointees > this.pointeesMax) throw new MalformedError('ndr: too many pointees');
    const top = this.deferred[this.deferred.length - 1];
    // Outside any construct a pointee is read immediately (a top-level pointer, C706 14.3.12.1).
    if (top === undefined) this.construct(readPointee);
    else top.push(readPointee);
  }

  /** [unique] embedded or top-level pointer: referent id, pointee deferred; null when the id is 0. */
  unique<T>(read: () => T): NdrRef<T> {
    const ref: NdrRef<T> = { value: null };
    const id = this.u32();
    if (id !== 0) this.defer(() => (ref.value = read()));
    return ref;
  }

  /** Embedded [ref] pointer: a non-zero referent id on the wire, pointee deferred. */
  ref<T>(read: () => T): NdrRef<T> {
    const ref: NdrRef<T> = { value: null };
    const id = this.u32();
    if (id === 0) throw new MalformedError('ndr: null [ref] pointer');
    this.defer(() => (ref.value = read()));
    return ref;
  }

  /** [ptr] full pointer: a repeated referent id names the same pointee, which is read once. */
  full<T>(read: () => T): NdrRef<T> {
    const id = this.u32();
    if (id === 0) return { value: null };
    const seen = this.fullPointees.get(id);
    if (seen !== undefined) return seen as NdrRef<T>;
    const ref: NdrRef<T> = { value: null };
    this.fullPointees.set(id, ref as NdrRef<unknown>);
    this.defer(() => (ref.value = read()));
    return ref;
  }

  /** A count (conformance or variance) bounded by cap and by what the stub can still hold. */
  private count(what: string, cap: number, elementBytesMin: number): number {
    const n = this.u32();
    if (n > cap) throw new MalformedError(`ndr: ${what} ${n} exceeds ${cap}`);
    if (n * elementBytesMin > this.remaining) throw new MalformedError(`ndr: ${what} ${n} exceeds the stub`);
    return n;
  }

  /**
   * [string] wchar_t*: MaximumCount, Offset, ActualCount, then ActualCount UTF-16 units including
   * the terminating NUL (C706 14.3.4.2 conformant varying strings, MS-RPCE 2.2.5.2.2).
   */
  wstring(): string {
    const max = this.count('string MaximumCount', this.stringUnitsMax, 0);
    const offset = this.u32();
    const actual = this.count('string ActualCount', this.stringUnitsMax, 2);
    if (offset !== 0 || actual > max) throw new MalformedError('ndr: string variance outside its conformance');
    if (actual === 0) throw new MalformedError('ndr: [string] without its terminator');
    const raw = this.bytes(actual * 2);
    if (raw.readUInt16LE(raw.length - 2) !== 0) throw new MalformedError('ndr: [string] not NUL-terminated');
    return raw.toString('utf16le', 0, raw.length - 2);
  }

  /** Conformant array (C706 14.3.3.2): MaximumCount, then the elements; pointees follow per construct. */
  conformantArray<T>(readElement: (index: number) => T, elementBytesMin = 1): T[] {
    const n = this.count('array MaximumCount', this.arrayCountMax, elementBytesMin);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(readElement(i));
    return out;
  }

  /** Conformant byte array as a view. */
  conformantBytes(max = this.arrayCountMax): Buffer {
    const n = this.count('byte array MaximumCount', max, 1);
    return this.bytes(n);
  }
}

export class NdrWriter {
  private buf: Buffer;
  private pos = 0;
  private nextReferentId = REFERENT_ID_FIRST;
  private readonly deferred: Array<Array<() => void>> = [];

  constructor(initialBytes = 256) {
    this.buf = Buffer.alloc(Math.max(16, initialBytes));
  }

  get offset(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Writes zero padding up to a multiple of n. */
  align(n: 1 | 2 | 4 | 8): void {
    const pad = (n - (this.pos % n)) % n;
    this.room(pad);
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
  }

  u16(v: number): void {
    this.align(2);
    this.room(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }

  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  i32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeInt32LE(v | 0, this.pos);
    this.pos += 4;
  }

  u64(v: bigint): void {
    this.align(8);
    this.room(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** Runs fn, then writes the pointees it registered, each followed by its own pointees. */
  construct(fn: () => void): void {
    this.deferred.push([]);
    let queue: Array<() => void>;
    try {
      fn();
    } finally {
      queue = this.deferred.pop()!;
    }
    for (const writePointee of queue) this.construct(writePointee);
  }

  private defer(writePointee: () => void): void {
    const top = this.deferred[this.deferred.length - 1];
    if (top === undefined) this.construct(writePointee);
    else top.push(writePointee);
  }

  private referentId(): number {
    const id = this.nextReferentId;
    this.nextReferentId += REFERENT_ID_STEP;
    return id;
  }

  /** [unique] pointer: 0 for null/undefined, else a referent id and the pointee deferred. */
  unique<T>(value: T | null | undefined, write: (v: T) => void): void {
    if (value === null || value === undefined) {
      this.u32(0);
      return;
    }
    this.u32(this.referentId());
    this.defer(() => write(value));
  }

  /** Embedded [ref] pointer: never null. */
  ref<T>(value: T, write: (v: T) => void): void {
    assert(value !== null && value !== undefined, 'ndr: [ref] pointer to null');
    this.u32(this.referentId());
    this.defer(() => write(value));
  }

  /** [string] wchar_t* pointee: MaximumCount = Offset + ActualCount, terminator included. */
  wstring(s: string): void {
    const units = s.length + 1;
    this.u32(units);
    this.u32(0);
    this.u32(units);
    this.room(units * 2);
    this.buf.write(s, this.pos, 'utf16le');
    this.buf.writeUInt16LE(0, this.pos + s.length * 2);
    this.pos += units * 2;
  }

  /** unique pointer to a [string] wchar_t (the common LPWSTR field). */
  uniqueWstring(s: string | null | undefined): void {
    this.unique(s, (v) => this.wstring(v));
  }

  conformantArray<T>(items: readonly T[], writeElement: (item: T, index: number) => void): void {
    this.u32(items.length);
    items.forEach(writeElement);
  }

  /** The bytes written so far (a view of the internal buffer; do not write after taking it). */
  finish(): Buffer {
    assert(this.deferred.length === 0, 'ndr: finish() inside a construct');
    return this.buf.subarray(0, this.pos);
  }
}

/** Canonical lowercase UUID text from its 16-byte NDR form (first three fields little-endian). */
export function uuidFromBytes(b: Buffer): string {
  assert(b.length === 16, 'uuid is 16 bytes');
  const h = b.toString('hex');
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return `${le(h.slice(0, 8))}-${le(h.slice(8, 12))}-${le(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 16-byte NDR form of a UUID string. */
export function uuidToBytes(uuid: string): Buffer {
  assert(UUID_TEXT.test(uuid), `uuid text: ${uuid}`);
  const h = uuid.replace(/-/g, '').toLowerCase();
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return Buffer.from(le(h.slice(0, 8)) + le(h.slice(8, 12)) + le(h.slice(12, 16)) + h.slice(16), 'hex');
}
