// CREATE (MS-SMB2 3.3.5.9; open semantics from MS-FSA 2.1.5.1).
// Share modes, oplocks, leases and durable handles arrive with the Windows semantics issue (they live
// in the replicated open table); until then no oplock or lease is granted and durable requests are
// not acknowledged, which MS-SMB2 allows (the client then treats the open as ordinary).

import { limits } from '../../base/limits.js';
import { IosError, FILE_ATTR_SETTABLE, FileAttr, type OpenResult } from '../../ios/spi.js';
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
import { encodeMaximalAccessResponse, encodeQueryOnDiskIdResponse, decodeAllocationSize } from '../../protocol/create-contexts.js';
import type { Reply, RequestContext } from '../context.js';
import { hasAny, mapGenericAccess, parentOf, parseSmbPath, WRITE_ACCESS_BITS, wireAttributes, wireTimes } from '../files.js';
import type { Open, Session, Tree } from '../state.js';
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
// refused until opens by id are served.
const OPTIONS_NOT_SUPPORTED = 0x00100000 | 0x00002000;
const OPTIONS_VALID_MASK = 0x00ffffff;

export async function handleCreate(ctx: RequestContext): Promise<Reply> {
  const req = decodeCreateRequest(ctx.msg);
  const tree = ctx.tree!;
  const session = ctx.session!;

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
  if (req.FileAttributes & ~0x0003ffff) return { status: NtStatus.INVALID_PARAMETER };
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

async function openFile(ctx: RequestContext, req: CreateRequest, tree: Tree): Promise<Reply> {
  const share = tree.share;
  const ios = share.ios!;
  const session = ctx.session!;
  const server = ctx.conn.server;

  const parsed = parseSmbPath(req.Name);
  if (!parsed.ok) return { status: parsed.status };
  const path = parsed.path;
  const stream = parsed.stream;
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
  if (directory === true && (req.CreateDisposition === CreateDisposition.FILE_SUPERSEDE || req.CreateDisposition === CreateDisposition.FILE_OVERWRITE || req.CreateDisposition === CreateDisposition.FILE_OVERWRITE_IF)) {
    return { status: NtStatus.INVALID_PARAMETER };
  }
  if (path === '' && directory === false) return { status: NtStatus.FILE_IS_A_DIRECTORY };
  if (path === '' && req.CreateDisposition !== CreateDisposition.FILE_OPEN && req.CreateDisposition !== CreateDisposition.FILE_OPEN_IF) {
    return { status: NtStatus.ACCESS_DENIED };
  }

  const sdContext = findCreateContext(req.CreateContexts, CreateContextName.SD_BUFFER);
  if (findCreateContext(req.CreateContexts, CreateContextName.EA_BUFFER)) return { status: NtStatus.EAS_NOT_SUPPORTED };
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
  if (result) {
    const sd = await result.handle.getSecurity();
    // Overwriting needs write access whatever was asked for (MS-FSA 2.1.5.1.2.1).
    const need = overwrites ? desired | AccessMask.FILE_WRITE_DATA : desired;
    const check = fileAccessCheck({ sd, parentSd, token, desired: need | (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED) });
    if (!check.ok) {
      await result.handle.close();
      return { status: check.privilegeNotHeld ? NtStatus.PRIVILEGE_NOT_HELD : NtStatus.ACCESS_DENIED };
    }
    if (req.DesiredAccess & AccessMask.MAXIMUM_ALLOWED) granted = check.granted & tree.maximalAccess;
    else granted = desired | (check.granted & AccessMask.FILE_READ_ATTRIBUTES);
    if (overwrites) {
      if (result.handle.isDirectory) {
        await result.handle.close();
        return { status: NtStatus.INVALID_PARAMETER };
      }
      // MS-FSA 2.1.5.1.2.1: overwrite/supersede cut the data and take the requested attributes.
      await result.handle.truncate(0);
      await result.handle.setInfo({ attributes });
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
      });
    } catch (err) {
      if (err instanceof IosError) return { status: await statusForOpenError(err, ios, path) };
      throw err;
    }
  }

  const handle = result.handle;
  let info;
  try {
    info = await handle.info();
    if (result.action === 'opened' && !info.isDirectory && (info.attributes & FileAttr.READONLY)) {
      if (desired & (AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA)) {
        await handle.close();
        return { status: NtStatus.ACCESS_DENIED };
      }
      if (deleteOnClose) {
        await handle.close();
        return { status: NtStatus.CANNOT_DELETE };
      }
    }
    if (deleteOnClose && path === '') {
      await handle.close();
      return { status: NtStatus.CANNOT_DELETE };
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }

  if (result.action === 'created') {
    server.notify.emit(share, result.path, FileAction.FILE_ACTION_ADDED, info.isDirectory ? 'directory' : 'file');
  }
  const volatile = server.allocateVolatileId();
  const open: Open = {
    persistent: volatile,
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
  };
  session.opens.set(volatile, open);

  const contexts: CreateContextOut[] = [];
  if (findCreateContext(req.CreateContexts, CreateContextName.QUERY_MAXIMAL_ACCESS)) {
    // MS-SMB2 3.3.5.9.5: what this user could be granted on this object.
    const sd = await handle.getSecurity();
    let maximal = fileAccessCheck({ sd, parentSd, token, desired: AccessMask.MAXIMUM_ALLOWED }).granted & tree.maximalAccess;
    if (!info.isDirectory && info.attributes & FileAttr.READONLY) maximal &= ~(AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA);
    contexts.push({ Name: CreateContextName.QUERY_MAXIMAL_ACCESS, Data: encodeMaximalAccessResponse({ QueryStatus: 0, MaximalAccess: maximal }) });
  }
  if (findCreateContext(req.CreateContexts, CreateContextName.QUERY_ON_DISK_ID)) {
    const fs = await server.volumeInfo(tree.share);
    contexts.push({ Name: CreateContextName.QUERY_ON_DISK_ID, Data: encodeQueryOnDiskIdResponse({ DiskFileId: info.fileId, VolumeId: BigInt(fs.volumeSerial) }) });
  }

  const FileId = { Persistent: open.persistent, Volatile: open.volatile };
  const times = wireTimes(info);
  return {
    status: NtStatus.SUCCESS,
    createdFileId: FileId,
    body: createResponse({
      OplockLevel: OplockLevel.NONE,
      CreateAction: ACTION_FOR[result.action],
      ...times,
      AllocationSize: BigInt(info.allocationSize),
      EndofFile: BigInt(info.size),
      FileAttributes: wireAttributes(info),
      FileId,
      CreateContexts: contexts,
    }),
  };
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
