// CREATE (MS-SMB2 3.3.5.9; open semantics from MS-FSA 2.1.5.1).
// Every disk open is a record of the replicated open table (src/meta/families/opens.ts): the share
// mode check, oplock and lease grants with the breaks they cause, durable handles (v1 and v2) and
// APP_INSTANCE_ID takeover are decided there by one command; this handler resolves the object in the
// driver, checks access, proposes the open, waits for the breaks it must wait for, and answers.
// Persistent handles stay unadvertised (the cluster issue honours them).

import { limits } from '../../base/limits.js';
import { IosError, FILE_ATTR_SETTABLE, FileAttr, type EaEntry, type FileInfo, type IosHandle, type OpenResult } from '../../ios/spi.js';
import { NtStatus } from '../../protocol/ntstatus.js';
import {
  AccessMask,
  CreateAction,
  CreateContextName,
  CreateDisposition,
  CreateOptions,
  createResponse,
  decodeCreateRequest,
  findCreateContext,
  ImpersonationLevel,
  OplockLevel,
  type CreateContextOut,
  type CreateRequest,
} from '../../protocol/create.js';
import { encodeMaximalAccessResponse, encodeQueryOnDiskIdResponse, decodeAllocationSize, decodeEaBuffer } from '../../protocol/create-contexts.js';
import { checkEaList } from '../../protocol/fscc/ea.js';
import type { Reply, RequestContext } from '../context.js';
import { hasAny, mapGenericAccess, parentOf, parseSmbPath, WRITE_ACCESS_BITS, wireAttributes, wireTimes } from '../files.js';
import type { Open, Session, Tree } from '../state.js';
import { endOpen, openEndsSettled, pendingDeleteKey, removalMark, removedSince, statusForRefusal, tableFileId, tableStream } from '../opens.js';
import type { CreateOutcome, CreateRequest as TableCreate, OpenGrant, OplockLevel as TableOplock } from '../../meta/opens-client.js';
import {
  decodeAppInstanceId,
  decodeAppInstanceVersion,
  decodeDurableHandleReconnect,
  decodeDurableHandleReconnectV2,
  decodeDurableHandleRequestV2,
  decodeLease,
  DurableHandleFlags,
  encodeDurableHandleResponse,
  encodeDurableHandleResponseV2,
  encodeLease,
  LeaseFlags,
  type Lease as LeaseContext,
} from '../../protocol/create-contexts.js';
import { Dialect } from '../../protocol/negotiate.js';
import { HeaderFlags } from '../../protocol/header.js';
import type { Connection } from '../connection.js';
import { createAccessCheck, fileAccessCheck, inheritSecurityDescriptor } from '../../auth/access-check.js';
import { tokenForUser, type AccessToken } from '../../auth/token.js';
import { FileAction } from '../../protocol/change-notify.js';

/** The session's access token (MS-DTYP 2.5.2), built once. */
function sessionToken(session: Session): AccessToken {
  session.token ??= tokenForUser({ userSid: session.sid, isGuest: session.isGuest, isAnonymous: session.isAnonymous });
  return session.token;
}
import { statusForIosError } from '../status-map.js';


const ACTION_FOR: Record<OpenResult['action'], number> = {
  opened: CreateAction.FILE_OPENED,
  created: CreateAction.FILE_CREATED,
  truncated: CreateAction.FILE_OVERWRITTEN,
  replaced: CreateAction.FILE_SUPERSEDED,
};

// MS-SMB2 3.3.5.9: FILE_RESERVE_OPFILTER is not supported by SMB2 servers; FILE_OPEN_BY_FILE_ID is
// refused until opens by id are served; FILE_COMPLETE_IF_OPLOCKED is not supported either (as
// Windows answers: smbtorture smb2.create.gentest).
const OPTIONS_NOT_SUPPORTED = 0x00100000 | 0x00002000 | 0x00000080;
/** MS-FSA 2.1.5.1: FILE_ATTRIBUTE_VOLUME (0x8), FILE_ATTRIBUTE_DEVICE (0x40), INTEGRITY_STREAM (0x8000)
 *  and the bits above 0xffff are invalid in a create. */
const ATTRIBUTES_VALID_MASK = 0x00007fb7;
const OPTIONS_VALID_MASK = 0x00ffffff;

export async function handleCreate(ctx: RequestContext): Promise<Reply> {
  const req = decodeCreateRequest(ctx.msg);
  const tree = ctx.tree!;
  const session = ctx.session!;

  // MS-SMB2 3.3.5.9.7 / 3.3.5.9.12: a durable reconnect is judged by its context alone; the other
  // fields of the request (name included, for oplock opens) are ignored, so it comes before their
  // validation.
  if (tree.share.type !== 'ipc') {
    const oc = parseOpenContexts(ctx.conn, req);
    if ('status' in oc) return { status: oc.status };
    if (oc.reconnectV1 !== undefined || oc.reconnectV2 !== undefined) {
      const parsed = parseSmbPath(req.Name);
      return reconnectOpen(ctx, tree, oc, parsed.ok ? parsed.path : undefined, parsed.ok ? parsed.stream : undefined);
    }
  }

  // MS-SMB2 3.3.5.9: parameter validation before anything touches storage.
  if (req.ImpersonationLevel > ImpersonationLevel.Delegate) return { status: NtStatus.BAD_IMPERSONATION_LEVEL };
  if (req.CreateDisposition > CreateDisposition.FILE_OVERWRITE_IF) return { status: NtStatus.INVALID_PARAMETER };
  if ((req.CreateOptions & ~OPTIONS_VALID_MASK) !== 0) return { status: NtStatus.INVALID_PARAMETER };
  if (req.CreateOptions & OPTIONS_NOT_SUPPORTED) return { status: NtStatus.NOT_SUPPORTED };
  if ((req.CreateOptions & CreateOptions.FILE_DIRECTORY_FILE) && (req.CreateOptions & CreateOptions.FILE_NON_DIRECTORY_FILE)) {
    return { status: NtStatus.INVALID_PARAMETER };
  }
  if (req.DesiredAccess & 0x0ce0fe00) return { status: NtStatus.ACCESS_DENIED }; // MS-SMB2 3.3.5.9: reserved access bits
  // MS-FSA 2.1.5.1: attribute bits outside the defined set are invalid.
  if (req.FileAttributes & ~ATTRIBUTES_VALID_MASK) return { status: NtStatus.INVALID_PARAMETER };
  if (session.opens.size >= limits.opensPerSessionMax) return { status: NtStatus.INSUFFICIENT_RESOURCES };

  if (tree.share.type === 'ipc') return openPipe(ctx, req);
  return openFile(ctx, req, tree);
}

function openPipe(ctx: RequestContext, req: CreateRequest): Reply {
  const server = ctx.conn.server;
  const found = server.pipes.resolve(req.Name);
  if (!found) return { status: NtStatus.OBJECT_NAME_NOT_FOUND };
  const session = ctx.session!;
  const pipe = server.newPipe(found, session);
  const volatile = server.allocateVolatileId();
  const open: Open = {
    persistent: volatile,
    volatile,
    session,
    tree: ctx.tree!,
    kind: 'pipe',
    pipe,
    path: found.pipeName,
    grantedAccess: mapGenericAccess(req.DesiredAccess),
    shareAccess: req.ShareAccess,
    createOptions: req.CreateOptions,
    deleteOnClose: false,
    position: 0n,
    mode: 0,
    closed: false,
    clientGuid: clientGuidOf(ctx.conn),
    durable: 'none',
    disconnected: false,
    channelSequence: 0,
    createAction: CreateAction.FILE_OPENED,
  };
  session.opens.set(volatile, open);
  const FileId = { Persistent: open.persistent, Volatile: open.volatile };
  return {
    status: NtStatus.SUCCESS,
    createdFileId: FileId,
    body: createResponse({
      OplockLevel: OplockLevel.NONE,
      CreateAction: CreateAction.FILE_OPENED,
      CreationTime: 0n,
      LastAccessTime: 0n,
      LastWriteTime: 0n,
      ChangeTime: 0n,
      AllocationSize: 4096n,
      EndofFile: 0n,
      FileAttributes: FileAttr.NORMAL,
      FileId,
    }),
  };
}

/** openFileOnce's answer when the create has to start again from the name (see admit()). */
const RESTART: Reply = { status: NtStatus.SUCCESS, noResponse: true };

async function openFile(ctx: RequestContext, req: CreateRequest, tree: Tree): Promise<Reply> {
  // A break an earlier request of this session started goes out before this create is answered.
  const fence = ctx.conn.server.openTable.settled(ctx.session!);
  if (fence !== undefined) await fence;
  for (let i = 0; i < 3; i++) {
    const r = await openFileOnce(ctx, req, tree);
    if (r !== RESTART) return r;
  }
  return { status: NtStatus.SHARING_VIOLATION };
}

async function openFileOnce(ctx: RequestContext, req: CreateRequest, tree: Tree): Promise<Reply> {
  const share = tree.share;
  const ios = share.ios!;
  const session = ctx.session!;
  const server = ctx.conn.server;
  // Removals by delete-on-close from here on are checked against the object this create opens.
  const mark = removalMark(server);

  const parsed = parseSmbPath(req.Name);
  if (!parsed.ok) return { status: parsed.status };
  const path = parsed.path;
  const stream = parsed.stream;
  const oc = parseOpenContexts(ctx.conn, req);
  if ('status' in oc) return { status: oc.status };
  // MS-FSA 2.1.5.1: a named stream is never a directory.
  if (stream !== undefined && req.CreateOptions & CreateOptions.FILE_DIRECTORY_FILE) return { status: NtStatus.NOT_A_DIRECTORY };
  const streamOpt = stream !== undefined ? { stream } : {};

  let desired = mapGenericAccess(req.DesiredAccess);
  if (desired & AccessMask.MAXIMUM_ALLOWED) desired = (desired & ~AccessMask.MAXIMUM_ALLOWED) | tree.maximalAccess;
  const mayWrite = hasAny(desired, WRITE_ACCESS_BITS) || req.CreateDisposition !== CreateDisposition.FILE_OPEN;
  const writesData = req.CreateDisposition !== CreateDisposition.FILE_OPEN && req.CreateDisposition !== CreateDisposition.FILE_OPEN_IF;
  if ((share.readOnly || (tree.maximalAccess & AccessMask.FILE_WRITE_DATA) === 0) && (hasAny(desired, WRITE_ACCESS_BITS) || writesData)) {
    return { status: NtStatus.ACCESS_DENIED };
  }

  const deleteOnClose = (req.CreateOptions & CreateOptions.FILE_DELETE_ON_CLOSE) !== 0;
  // MS-FSA 2.1.5.1: FILE_DELETE_ON_CLOSE needs DELETE access.
  if (deleteOnClose && !(desired & AccessMask.DELETE)) return { status: NtStatus.INVALID_PARAMETER };

  let directory: boolean | undefined;
  if (req.CreateOptions & CreateOptions.FILE_DIRECTORY_FILE) directory = true;
  else if (req.CreateOptions & CreateOptions.FILE_NON_DIRECTORY_FILE) directory = false;
  // MS-FSA 2.1.5.1: "name::$DATA" names the unnamed data stream, which directories do not have.
  if (parsed.dataStream) {
    if (directory === true) return { status: NtStatus.NOT_A_DIRECTORY };
    directory = false;
  }
  if (directory === true && (req.CreateDisposition === CreateDisposition.FILE_SUPERSEDE || req.CreateDisposition === CreateDisposition.FILE_OVERWRITE || req.CreateDisposition === CreateDisposition.FILE_OVERWRITE_IF)) {
    return { status: NtStatus.INVALID_PARAMETER };
  }
  if (path === '' && directory === false) return { status: NtStatus.FILE_IS_A_DIRECTORY };
  if (path === '' && req.CreateDisposition !== CreateDisposition.FILE_OPEN && req.CreateDisposition !== CreateDisposition.FILE_OPEN_IF) {
    return { status: NtStatus.ACCESS_DENIED };
  }

  // MS-SMB2 3.3.5.9.4: a TWrp context asks for a previous version of the file; this server keeps none.
  if (findCreateContext(req.CreateContexts, CreateContextName.TIMEWARP_TOKEN)) return { status: NtStatus.OBJECT_NAME_NOT_FOUND };
  const sdContext = findCreateContext(req.CreateContexts, CreateContextName.SD_BUFFER);
  // MS-SMB2 2.2.13.2.2 / MS-FSA 2.1.5.1: EAs for the created or overwritten file, checked as SET_INFO
  // FileFullEaInformation checks them (empty values are dropped).
  const eaContext = findCreateContext(req.CreateContexts, CreateContextName.EA_BUFFER);
  let eas: EaEntry[] | undefined;
  if (eaContext) {
    const checked = checkEaList(decodeEaBuffer(eaContext.Data));
    if (!checked.ok) return { status: checked.status };
    eas = checked.eas.filter((ea) => ea.EaValue.length > 0).map((ea) => ({ name: ea.EaName, flags: ea.Flags, value: ea.EaValue }));
    if (eas.length === 0) eas = undefined;
  }
  const alloc = findCreateContext(req.CreateContexts, CreateContextName.ALLOCATION_SIZE);
  let allocationSize: number | undefined;
  if (alloc) {
    const v = decodeAllocationSize(alloc.Data).AllocationSize;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return { status: NtStatus.INVALID_PARAMETER };
    allocationSize = Number(v);
  }

  // Access checks (MS-FSA 2.1.5.1.2.1, MS-DTYP 2.5.3.2): an existing object is opened without
  // changing it, checked against its security descriptor, and only then truncated; a new object is
  // checked against its parent and created with the descriptor it inherits (MS-DTYP 2.5.3.4).
  const disposition = req.CreateDisposition;
  const overwrites =
    disposition === CreateDisposition.FILE_OVERWRITE ||
    disposition === CreateDisposition.FILE_OVERWRITE_IF ||
    disposition === CreateDisposition.FILE_SUPERSEDE;
  const mayCreate = disposition !== CreateDisposition.FILE_OPEN && disposition !== CreateDisposition.FILE_OVERWRITE;
  const token = sessionToken(session);
  const parentSd = path === '' ? undefined : await server.parentSecurity(share, parentOf(path));
  const writable = mayWrite && !share.readOnly;
  const attributes = (req.FileAttributes & FILE_ATTR_SETTABLE) | (directory === true ? 0 : FileAttr.ARCHIVE);

  let result: OpenResult | undefined;
  let granted = desired;
  if (disposition !== CreateDisposition.FILE_CREATE) {
    try {
      result = await ios.open(path, { mode: 'open', ...(directory !== undefined && stream === undefined ? { directory } : {}), write: writable, ...streamOpt });
    } catch (err) {
      if (!(err instanceof IosError)) throw err;
      if (err.code !== 'ENOENT' || !mayCreate) return { status: await statusForOpenError(err, ios, path) };
    }
  }
  let info: FileInfo;
  let admitted: Admitted;
  if (result) {
    const handle = result.handle;
    const refuse = async (status: number): Promise<Reply> => {
      await handle.close().catch(() => undefined);
      return { status };
    };
    const sd = await handle.getSecurity();
    // Overwriting needs write access whatever was asked for (MS-FSA 2.1.5.1.2.1).
    const need = overwrites ? desired | AccessMask.FILE_WRITE_DATA : desired;
    const check = fileAccessCheck({ sd, parentSd, token, desired: need | (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED) });
    if (!check.ok) return refuse(check.privilegeNotHeld ? NtStatus.PRIVILEGE_NOT_HELD : NtStatus.ACCESS_DENIED);
    if (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED) granted = check.granted & tree.maximalAccess;
    else granted = desired;
    if (overwrites && handle.isDirectory) return refuse(NtStatus.INVALID_PARAMETER);
    try {
      info = await handle.info();
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    if (!info.isDirectory && info.attributes & FileAttr.READONLY) {
      if (desired & (AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA)) return refuse(NtStatus.ACCESS_DENIED);
      if (deleteOnClose) return refuse(NtStatus.CANNOT_DELETE);
    }
    if (deleteOnClose && path === '') return refuse(NtStatus.CANNOT_DELETE);
    // MS-FSA 2.1.5.1.2: a file whose delete is pending cannot be opened again.
    const file = tableFileId(share, handle.fileId);
    if (server.pendingDeletes.has(pendingDeleteKey({ file, stream: result.stream })) || (result.stream !== undefined && server.pendingDeletes.has(file))) {
      // A close of the file's last open may be deleting it right now: once that settles, the
      // create starts again from the name (it may find nothing, or a new file).
      if (await openEndsSettled(server, file)) {
        await handle.close().catch(() => undefined);
        return RESTART;
      }
      return refuse(NtStatus.DELETE_PENDING);
    }
    // The last open of a delete-pending object closed while this create was opening it: the object
    // is gone (MS-FSA 2.1.5.4) and the name is looked up again.
    const removed = (): boolean => removedSince(server, pendingDeleteKey({ file, stream: result!.stream }), mark) || removedSince(server, file, mark);
    if (removed()) {
      await handle.close().catch(() => undefined);
      return RESTART;
    }
    const a = await admit(ctx, req, tree, handle, file, result.stream, info.isDirectory, granted, overwrites, oc);
    if ('status' in a) return refuse(a.status);
    if ('restart' in a) {
      await handle.close().catch(() => undefined);
      return RESTART;
    }
    if (removed()) {
      await server.openTable.client.close(a.grant.openId, server.openTable.now()).catch(() => undefined);
      await handle.close().catch(() => undefined);
      return RESTART;
    }
    admitted = a;
    const replayed = a.grant.replayed ? server.openTable.get(a.grant.openId) : undefined;
    if (replayed !== undefined && !replayed.closed && !replayed.disconnected && replayed.session === session) {
      // MS-SMB2 3.3.5.9.10: a replayed create (same CreateGuid, REPLAY flag) answers with the open it
      // made the first time: same FileId, same create action; nothing is opened, truncated or broken.
      await handle.close().catch(() => undefined);
      const replayInfo = await replayed.handle!.info();
      return createdReply(replayed, replayInfo, replayed.createAction, wireOplock(a.grant.oplock), grantContexts(a.grant, a.lease, oc));
    }
    if (overwrites) {
      try {
        // MS-FSA 2.1.5.1.2.1: overwrite/supersede cut the data and take the requested attributes.
        await handle.truncate(0);
        await handle.setInfo({ attributes, ...(allocationSize !== undefined ? { allocationSize } : {}) });
        if (eas !== undefined) {
          if (handle.setEas === undefined) throw new IosError('EINVAL', 'the share keeps no EAs');
          await handle.setEas(eas);
        }
        info = await handle.info();
      } catch (err) {
        await server.openTable.client.close(a.grant.openId, server.openTable.now()).catch(() => undefined);
        await handle.close().catch(() => undefined);
        throw err;
      }
      result = { ...result, action: disposition === CreateDisposition.FILE_SUPERSEDE ? 'replaced' : 'truncated' };
    }
  } else {
    const isDirectory = directory === true;
    const check = createAccessCheck({ parentSd, token, desired: desired | (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED), isDirectory });
    if (!check.ok) return { status: check.privilegeNotHeld ? NtStatus.PRIVILEGE_NOT_HELD : NtStatus.ACCESS_DENIED };
    if (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED) granted = check.granted & tree.maximalAccess;
    let sd: Buffer;
    try {
      sd = inheritSecurityDescriptor(parentSd, {
        isDirectory,
        creatorSid: token.userSid,
        creatorGroupSid: token.userSid,
        ...(sdContext && sdContext.Data.length > 0 ? { explicitSd: sdContext.Data } : {}),
      });
    } catch {
      return { status: NtStatus.INVALID_SECURITY_DESCR };
    }
    try {
      result = await ios.open(path, {
        mode: 'create',
        ...streamOpt,
        ...(directory !== undefined && stream === undefined ? { directory } : {}),
        write: writable,
        attributes,
        securityDescriptor: sd,
        ...(allocationSize !== undefined ? { allocationSize } : {}),
        ...(eas !== undefined ? { eas } : {}),
      });
    } catch (err) {
      // Another client created the name between our lookup and our create: a disposition that may
      // open an existing object starts again and opens it (smbtorture smb2.create.mkdir-dup).
      if (err instanceof IosError && err.code === 'EEXIST' && disposition !== CreateDisposition.FILE_CREATE) return RESTART;
      if (err instanceof IosError) return { status: await statusForOpenError(err, ios, path) };
      throw err;
    }
    const handle = result.handle;
    try {
      info = await handle.info();
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    const a = await admit(ctx, req, tree, handle, tableFileId(share, handle.fileId), result.stream, info.isDirectory, granted, false, oc);
    if ('status' in a || 'restart' in a) {
      await handle.close().catch(() => undefined);
      return 'status' in a ? { status: a.status } : RESTART;
    }
    admitted = a;
  }

  const handle = result.handle;
  if (result.action === 'created') {
    server.notify.emit(share, result.path, FileAction.FILE_ACTION_ADDED, info.isDirectory ? 'directory' : 'file');
  }
  const grant = admitted.grant;
  const volatile = server.allocateVolatileId();
  const open: Open = {
    persistent: BigInt(grant.openId),
    volatile,
    session,
    tree,
    kind: info.isDirectory ? 'directory' : 'file',
    handle,
    path: result.path,
    ...(result.stream !== undefined ? { stream: result.stream } : {}),
    grantedAccess: granted,
    shareAccess: req.ShareAccess,
    createOptions: req.CreateOptions,
    deleteOnClose,
    position: 0n,
    mode: req.CreateOptions & (CreateOptions.FILE_WRITE_THROUGH | CreateOptions.FILE_SEQUENTIAL_ONLY | CreateOptions.FILE_NO_INTERMEDIATE_BUFFERING | CreateOptions.FILE_SYNCHRONOUS_IO_ALERT | CreateOptions.FILE_SYNCHRONOUS_IO_NONALERT | CreateOptions.FILE_DELETE_ON_CLOSE),
    closed: false,
    tableId: grant.openId,
    file: admitted.file,
    clientGuid: clientGuidOf(ctx.conn),
    ...(admitted.lease !== undefined && grant.lease !== undefined
      ? { lease: { key: grant.lease.key, keyBytes: Buffer.from(admitted.lease.LeaseKey), version: grant.lease.version } }
      : {}),
    durable: grant.durable,
    disconnected: false,
    // MS-SMB2 3.3.5.9: Open.ChannelSequence starts as the create's.
    channelSequence: ctx.conn.negotiated!.dialect >= Dialect.SMB300 ? ctx.hdr.ChannelSequence : 0,
    ...(oc.durableV2 !== undefined ? { createGuid: oc.durableV2.createGuid } : {}),
    createAction: ACTION_FOR[result.action],
  };
  session.opens.set(volatile, open);
  server.openTable.register(open);

  const contexts: CreateContextOut[] = [];
  if (findCreateContext(req.CreateContexts, CreateContextName.QUERY_MAXIMAL_ACCESS)) {
    // MS-SMB2 3.3.5.9.5: what this user could be granted on this object.
    const sd = await handle.getSecurity();
    let maximal = fileAccessCheck({ sd, parentSd, token, desired: AccessMask.MAXIMUM_ALLOWED }).granted & tree.maximalAccess;
    if (!info.isDirectory && info.attributes & FileAttr.READONLY) maximal &= ~(AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA);
    contexts.push({ Name: CreateContextName.QUERY_MAXIMAL_ACCESS, Data: encodeMaximalAccessResponse({ QueryStatus: 0, MaximalAccess: maximal }) });
  }
  contexts.push(...grantContexts(grant, admitted.lease, oc));
  if (findCreateContext(req.CreateContexts, CreateContextName.QUERY_ON_DISK_ID)) {
    const fs = await server.volumeInfo(tree.share);
    contexts.push({ Name: CreateContextName.QUERY_ON_DISK_ID, Data: encodeQueryOnDiskIdResponse({ DiskFileId: info.fileId, VolumeId: BigInt(fs.volumeSerial) }) });
  }
  return createdReply(open, info, open.createAction, wireOplock(grant.oplock), contexts);
}

function createdReply(open: Open, info: FileInfo, action: number, oplockLevel: number, contexts: CreateContextOut[]): Reply {
  const FileId = { Persistent: open.persistent, Volatile: open.volatile };
  return {
    status: NtStatus.SUCCESS,
    createdFileId: FileId,
    body: createResponse({
      OplockLevel: oplockLevel,
      CreateAction: action,
      ...wireTimes(info),
      AllocationSize: BigInt(info.allocationSize),
      EndofFile: BigInt(info.size),
      FileAttributes: wireAttributes(info),
      FileId,
      CreateContexts: contexts,
    }),
  };
}

// ---- create contexts of the open table (MS-SMB2 3.3.5.9.6 - 3.3.5.9.13) ----

/** ClientGuid of a connection as the table keys it (hex; SMB 2.0.2 clients send none: zeros). */
export function clientGuidOf(conn: Connection): string {
  return conn.negotiated ? conn.negotiated.clientGuid.toString('hex') : '00000000000000000000000000000000';
}

interface OpenContexts {
  /** RqLs honoured for a new open (dialect 2.1+, RequestedOplockLevel LEASE). */
  lease?: LeaseContext;
  /** RqLs as sent, whatever RequestedOplockLevel says (a reconnect names its lease with it). */
  leaseContext?: LeaseContext;
  durableV1?: true;
  durableV2?: { timeoutMs: number; persistent: boolean; createGuid: string };
  reconnectV1?: { persistent: bigint; volatile: bigint };
  reconnectV2?: { persistent: bigint; volatile: bigint; createGuid: string; persistentFlag: boolean };
  appInstanceId?: string;
  appInstanceVersion?: [bigint, bigint];
}

/** Reads the durable, lease and app-instance contexts and applies MS-SMB2 3.3.5.9's combination rules. */
function parseOpenContexts(conn: Connection, req: CreateRequest): OpenContexts | { status: number } {
  const dialect = conn.negotiated?.dialect ?? Dialect.SMB202;
  const find = (name: string) => findCreateContext(req.CreateContexts, name);
  const oc: OpenContexts = {};
  try {
    const rq = find(CreateContextName.REQUEST_LEASE);
    // MS-SMB2 3.3.5.9.8 / 3.3.5.9.11: leases exist from 2.1; v2 leases (52 bytes) from 3.0. A new
    // open acts on the lease context only with RequestedOplockLevel LEASE; a durable reconnect
    // names its lease with it whatever the oplock level (3.3.5.9.7, 3.3.5.9.12).
    if (rq && dialect >= Dialect.SMB210) {
      let l: LeaseContext | undefined;
      if (rq.Data.length === 32 || (rq.Data.length === 52 && dialect >= Dialect.SMB300)) l = decodeLease(rq.Data);
      else if (rq.Data.length === 52) {
        const v2 = decodeLease(rq.Data);
        l = { version: 1, LeaseKey: v2.LeaseKey, LeaseState: v2.LeaseState, LeaseFlags: 0, LeaseDuration: 0n };
      }
      if (l !== undefined) {
        oc.leaseContext = l;
        if (req.RequestedOplockLevel === OplockLevel.LEASE) oc.lease = l;
      }
    }
    const dhnq = find(CreateContextName.DURABLE_HANDLE_REQUEST);
    const dhnc = find(CreateContextName.DURABLE_HANDLE_RECONNECT);
    const v3 = dialect >= Dialect.SMB300;
    const dh2q = v3 ? find(CreateContextName.DURABLE_HANDLE_REQUEST_V2) : undefined;
    const dh2c = v3 ? find(CreateContextName.DURABLE_HANDLE_RECONNECT_V2) : undefined;
    // MS-SMB2 3.3.5.9: DH2Q or DH2C with any other durable context is invalid.
    if ((dh2q || dh2c) && (dhnq || dhnc || (dh2q && dh2c))) return { status: NtStatus.INVALID_PARAMETER };
    if (dh2c) {
      const r = decodeDurableHandleReconnectV2(dh2c.Data);
      oc.reconnectV2 = {
        persistent: r.FileId.Persistent,
        volatile: r.FileId.Volatile,
        createGuid: r.CreateGuid.toString('hex'),
        persistentFlag: (r.Flags & DurableHandleFlags.SMB2_DHANDLE_FLAG_PERSISTENT) !== 0,
      };
    } else if (dhnc) {
      // MS-SMB2 3.3.5.9.7: DHnC wins over DHnQ in the same request.
      const r = decodeDurableHandleReconnect(dhnc.Data);
      oc.reconnectV1 = { persistent: r.FileId.Persistent, volatile: r.FileId.Volatile };
    } else if (dh2q) {
      const r = decodeDurableHandleRequestV2(dh2q.Data);
      oc.durableV2 = {
        timeoutMs: r.Timeout,
        persistent: (r.Flags & DurableHandleFlags.SMB2_DHANDLE_FLAG_PERSISTENT) !== 0,
        createGuid: Buffer.from(r.CreateGuid).toString('hex'),
      };
    } else if (dhnq) {
      oc.durableV1 = true;
    }
    if (v3) {
      const ai = find(CreateContextName.APP_INSTANCE_ID);
      if (ai) oc.appInstanceId = Buffer.from(decodeAppInstanceId(ai.Data).AppInstanceId).toString('hex');
      const av = find(CreateContextName.APP_INSTANCE_VERSION);
      if (av && oc.appInstanceId !== undefined) {
        const v = decodeAppInstanceVersion(av.Data);
        oc.appInstanceVersion = [v.AppInstanceVersionHigh, v.AppInstanceVersionLow];
      }
    }
  } catch {
    return { status: NtStatus.INVALID_PARAMETER };
  }
  return oc;
}

const TABLE_OPLOCK: Record<number, TableOplock> = {
  [OplockLevel.NONE]: 'none',
  [OplockLevel.II]: 'II',
  [OplockLevel.EXCLUSIVE]: 'exclusive',
  [OplockLevel.BATCH]: 'batch',
};

function wireOplock(level: TableOplock): number {
  switch (level) {
    case 'II':
      return OplockLevel.II;
    case 'exclusive':
      return OplockLevel.EXCLUSIVE;
    case 'batch':
      return OplockLevel.BATCH;
    case 'lease':
      return OplockLevel.LEASE;
    default:
      return OplockLevel.NONE;
  }
}

interface Admitted {
  grant: OpenGrant;
  file: string;
  lease: LeaseContext | undefined;
}

const CREATE_ATTEMPTS_MAX = 16;

/**
 * Proposes the open to the table (MS-FSA 2.1.5.1.2 sharing, MS-SMB2 3.3.5.9 oplock/lease/durable
 * grants) and waits for the breaks it has to wait for: a conflict with holders of handle caching is
 * settled by breaking them and trying again (MS-FSA 2.1.5.1.2, OPEN_BREAK_H).
 */
async function admit(
  ctx: RequestContext,
  req: CreateRequest,
  tree: Tree,
  handle: IosHandle,
  file: string,
  stream: string | undefined,
  isDirectory: boolean,
  granted: number,
  overwrite: boolean,
  oc: OpenContexts,
): Promise<Admitted | { status: number } | { restart: true }> {
  const server = ctx.conn.server;
  const table = server.openTable;
  const session = ctx.session!;
  const neg = ctx.conn.negotiated!;
  // Directory leases need SMB2_GLOBAL_CAP_DIRECTORY_LEASING, which is not offered (MS-SMB2
  // 3.3.5.9.11): a lease request on a directory gets no lease.
  let lease = oc.lease;
  if (lease !== undefined && isDirectory) {
    // Still, a lease key names one file per client (MS-SMB2 3.3.5.9.8): a key held on another file
    // is INVALID_PARAMETER even here.
    const held = table.client.lease(clientGuidOf(ctx.conn), Buffer.from(lease.LeaseKey).toString('hex'));
    if (held !== undefined && held.file !== file) return { status: NtStatus.INVALID_PARAMETER };
    lease = undefined;
  }
  const oplock: TableOplock = lease !== undefined ? 'lease' : req.RequestedOplockLevel === OplockLevel.LEASE ? 'none' : TABLE_OPLOCK[req.RequestedOplockLevel] ?? 'none';
  const cmd: TableCreate = {
    file,
    stream: tableStream(stream),
    directory: isDirectory,
    node: table.node,
    inc: table.inc,
    sessionId: session.id,
    clientGuid: clientGuidOf(ctx.conn),
    desiredAccess: granted,
    shareAccess: req.ShareAccess & 7,
    createOptions: req.CreateOptions,
    overwrite,
    oplock,
    caShare: false,
    replay: neg.dialect >= Dialect.SMB300 && (ctx.hdr.Flags & HeaderFlags.REPLAY_OPERATION) !== 0,
    owner: session.sid || session.user || 'anonymous',
    channelSequence: neg.dialect >= Dialect.SMB300 ? ctx.hdr.ChannelSequence : 0,
    now: table.now(),
  };
  if (lease !== undefined) {
    cmd.lease = {
      key: Buffer.from(lease.LeaseKey).toString('hex'),
      state: lease.LeaseState & 7,
      version: lease.version,
      ...(lease.version === 2 && lease.LeaseFlags & LeaseFlags.SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET
        ? { parentKey: Buffer.from(lease.ParentLeaseKey).toString('hex') }
        : {}),
      ...(lease.version === 2 ? { epoch: lease.Epoch } : {}),
    };
  }
  if (oc.durableV2 !== undefined) {
    cmd.createGuid = oc.durableV2.createGuid;
    // Persistent handles are not offered yet (no CA share): the table then grants v2 durability
    // under the usual batch-oplock / handle-lease condition, or none.
    cmd.durable = { kind: 'v2', timeoutMs: oc.durableV2.timeoutMs };
    if (oc.appInstanceId !== undefined) cmd.appInstanceId = oc.appInstanceId;
    if (oc.appInstanceVersion !== undefined) cmd.appInstanceVersion = oc.appInstanceVersion;
  } else if (oc.durableV1) {
    cmd.durable = { kind: 'v1', timeoutMs: 0 };
  }
  void handle;
  for (let attempt = 0; attempt < CREATE_ATTEMPTS_MAX; attempt++) {
    cmd.now = table.now();
    const r: CreateOutcome = await table.client.create(cmd);
    if (!r.ok) return { status: statusForRefusal(r.code) };
    if (r.closed.some((id) => table.get(id)?.deleteOnClose)) {
      // A disconnected durable open with delete-on-close was purged (MS-SMB2 3.3.4.6): its file goes
      // once its last open is gone, so this open steps back first and the whole create starts again
      // from the name.
      if (r.status === 'ok') await table.client.close(r.openId, table.now()).catch(() => undefined);
      await table.apply(r);
      return { restart: true };
    }
    await table.apply(r);
    await table.waitBreaks(r.waitFor, ctx.signal);
    if (ctx.signal.aborted) {
      if (r.status === 'ok') await table.client.close(r.openId, table.now()).catch(() => undefined);
      return { status: NtStatus.CANCELLED };
    }
    if (r.status === 'ok') return { grant: r, file, lease };
  }
  return { status: NtStatus.SHARING_VIOLATION };
}

/** The lease and durable response contexts (MS-SMB2 2.2.14.2.3, 2.2.14.2.10-12). */
function grantContexts(grant: OpenGrant, lease: LeaseContext | undefined, oc: OpenContexts): CreateContextOut[] {
  const out: CreateContextOut[] = [];
  if (lease !== undefined && grant.lease !== undefined) {
    const l = grant.lease;
    const flags = l.breakInProgress ? LeaseFlags.SMB2_LEASE_FLAG_BREAK_IN_PROGRESS : 0;
    // Answered in the version the lease was created with, whatever version this request used.
    const data: LeaseContext =
      l.version === 2
        ? {
            version: 2,
            LeaseKey: lease.LeaseKey,
            LeaseState: l.state,
            LeaseFlags: flags | (l.parentKey !== undefined ? LeaseFlags.SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET : 0),
            LeaseDuration: 0n,
            ParentLeaseKey: l.parentKey !== undefined ? Buffer.from(l.parentKey, 'hex') : Buffer.alloc(16),
            Epoch: l.epoch,
          }
        : { version: 1, LeaseKey: lease.LeaseKey, LeaseState: l.state, LeaseFlags: flags, LeaseDuration: 0n };
    out.push({ Name: CreateContextName.REQUEST_LEASE, Data: encodeLease(data) });
  }
  if (grant.durable === 'v1' && oc.durableV1) {
    out.push({ Name: CreateContextName.DURABLE_HANDLE_REQUEST, Data: encodeDurableHandleResponse() });
  } else if ((grant.durable === 'v2' || grant.durable === 'persistent') && oc.durableV2) {
    out.push({
      Name: CreateContextName.DURABLE_HANDLE_REQUEST_V2,
      Data: encodeDurableHandleResponseV2({ Timeout: grant.timeoutMs, Flags: grant.durable === 'persistent' ? DurableHandleFlags.SMB2_DHANDLE_FLAG_PERSISTENT : 0 }),
    });
  }
  return out;
}

/**
 * DHnC (MS-SMB2 3.3.5.9.7) and DH2C (3.3.5.9.12): reclaims a durable open that lost its connection.
 * The table judges the reclaim (owner, CreateGuid, lease, still-durable); the driver handle waited
 * here, attached to no session.
 */
async function reconnectOpen(ctx: RequestContext, tree: Tree, oc: OpenContexts, path: string | undefined, stream: string | undefined): Promise<Reply> {
  const server = ctx.conn.server;
  const table = server.openTable;
  const session = ctx.session!;
  const v2 = oc.reconnectV2 !== undefined;
  const persistentId = v2 ? oc.reconnectV2!.persistent : oc.reconnectV1!.persistent;
  const notFound: Reply = { status: NtStatus.OBJECT_NAME_NOT_FOUND };
  if (persistentId === 0n || persistentId > BigInt(Number.MAX_SAFE_INTEGER)) return notFound;
  const openId = Number(persistentId);
  let open = table.get(openId);
  // A reconnect can overtake the teardown of the connection it replaces (the client closed its socket
  // and reconnected before this process saw the close): give that teardown a moment to finish.
  if (open !== undefined && !open.disconnected) {
    const old = server.connectionFor(open.session);
    await table.whenDisconnected(open, old === undefined || old.isClosed ? 2000 : limits.durableReconnectRaceMs);
    open = table.get(openId);
  }
  if (open === undefined || !open.disconnected || open.tree.share !== tree.share) {
    ctx.conn.log.debug({ open: openId, local: open !== undefined, disconnected: open?.disconnected }, 'durable reconnect: no disconnected open here');
    return notFound;
  }
  const lease = oc.leaseContext;
  // MS-SMB2 3.3.5.9.7 / 3.3.5.9.12: a lease open is reclaimed with its lease, under the same name
  // (a wrong name with the right lease is INVALID_PARAMETER, as Windows answers).
  if (open.lease !== undefined && lease !== undefined && Buffer.from(lease.LeaseKey).toString('hex') === open.lease.key) {
    if (path === undefined || open.path.toUpperCase() !== path.toUpperCase() || (open.stream ?? '').toUpperCase() !== (stream ?? '').toUpperCase()) {
      return { status: NtStatus.INVALID_PARAMETER };
    }
  }
  const r = await table.client.reconnect({
    openId,
    clientGuid: clientGuidOf(ctx.conn),
    ...(v2 ? { createGuid: oc.reconnectV2!.createGuid } : {}),
    node: table.node,
    inc: table.inc,
    owner: session.sid || session.user || 'anonymous',
    sessionId: session.id,
    v2,
    persistent: v2 && oc.reconnectV2!.persistentFlag,
    ...(lease !== undefined ? { lease: { key: Buffer.from(lease.LeaseKey).toString('hex'), version: lease.version } } : {}),
    now: table.now(),
  });
  if (!r.ok) {
    ctx.conn.log.debug({ open: openId, reason: r.message }, 'durable reconnect refused by the open table');
    return { status: r.code === 'not-found' ? NtStatus.OBJECT_NAME_NOT_FOUND : statusForRefusal(r.code) };
  }
  let info: FileInfo;
  try {
    info = await open.handle!.info();
  } catch (err) {
    await endOpen(server, open, 'close');
    throw err;
  }
  // The open moves to this session (MS-SMB2 3.3.5.9.7: Open.Session, Open.Connection, Open.TreeConnect).
  open.session = session;
  open.tree = tree;
  open.disconnected = false;
  open.closed = false;
  open.clientGuid = clientGuidOf(ctx.conn);
  open.channelSequence = ctx.conn.negotiated!.dialect >= Dialect.SMB300 ? ctx.hdr.ChannelSequence : 0;
  table.reattached(open);
  session.opens.set(open.volatile, open);
  // The reconnect answers with the lease, and without a durable response context (as Windows does).
  const contexts = grantContexts(r, lease, {});
  return createdReply(open, info, CreateAction.FILE_OPENED, wireOplock(r.oplock), contexts);
}

/** ENOENT/ENOTDIR on the last component vs on a parent differ in MS-FSA 2.1.5.1. */
async function statusForOpenError(err: IosError, ios: NonNullable<Tree['share']['ios']>, path: string): Promise<number> {
  if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
    const parent = parentOf(path);
    if (path !== '' && parent !== '') {
      try {
        const p = await ios.stat(parent);
        if (!p.info.isDirectory) return NtStatus.OBJECT_PATH_NOT_FOUND;
      } catch {
        return NtStatus.OBJECT_PATH_NOT_FOUND;
      }
    }
    if (err.code === 'ENOTDIR') return NtStatus.NOT_A_DIRECTORY;
    return NtStatus.OBJECT_NAME_NOT_FOUND;
  }
  return statusForIosError(err.code);
}
