import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { nativeBinding } from '../net/native.js';

/**
 * A response body sent from a file with sendfile(2) (the native FileSend,
 * server/native/send_file.c): the page cache goes to the socket without a
 * copy through the process, and a client costs no memory of its own.
 *
 * Node's http module still owns the connection. It writes the status line
 * and headers; once they have left (nothing queued on the socket), the body
 * goes out beside Node, straight to the descriptor; then res.end() without
 * a body completes the response, and keep-alive goes on as usual. Node does
 * not count the body's bytes against Content-Length unless a response sets
 * strictContentLength, which these do not.
 */

/** A libuv stream handle's descriptor (Linux, TCP and pipes); undefined for TLS and for sockets without a handle. */
interface HandleWithFd {
  fd?: number;
}

/**
 * The response's connection, once it is the response's turn on it. A
 * keep-alive client can send its next request as soon as it has the last
 * byte of a body, before this process has ended that response (the body
 * went out beside Node); Node then holds the new response, without a
 * socket, until the previous one finishes (as for pipelined requests).
 * Undefined when the connection closes first.
 */
function assignedSocket(res: ServerResponse): Promise<Socket | null | undefined> {
  if (res.socket || res.writableEnded || res.destroyed) return Promise.resolve(res.socket);
  return new Promise((resolve) => {
    const done = (socket?: Socket) => {
      res.off('socket', done);
      res.req.off('close', closed);
      resolve(socket);
    };
    const closed = () => done(undefined);
    res.once('socket', done);
    res.req.once('close', closed);
  });
}

/**
 * The socket a response's body can be sent to with sendfile, once the
 * response has it: plain TCP with a descriptor, still writable.
 */
export async function sendfileSocket(res: ServerResponse): Promise<Socket | undefined> {
  const socket = await assignedSocket(res);
  if (!socket || socket.destroyed || !socket.writable) return undefined;
  if ((socket as Socket & { encrypted?: boolean }).encrypted) return undefined;
  const fd = (socket as Socket & { _handle?: HandleWithFd | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? socket : undefined;
}

function descriptorOf(socket: Socket): number {
  const fd = (socket as Socket & { _handle?: HandleWithFd | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  return fd;
}

/**
 * Resolves once everything written to the socket so far has reached the
 * kernel: the body goes to the descriptor directly, so it must not overtake
 * the headers. Writes complete in order, so an empty write's callback marks
 * the point. A corked socket is uncorked first: what it holds goes out
 * before the body in any case, and a cork left on would hold the callback.
 */
function flushed(socket: Socket): Promise<void> {
  while (socket.writableCorked > 0) socket.uncork();
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    socket.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Send bytes start..end (inclusive) of the file at `filePath` as the body of
 * `res`, whose status and headers (Content-Length included) are set and not
 * yet sent. Resolves when the body is sent and the response ended; rejects
 * when the file cannot be opened (headers not sent yet: the caller can
 * still answer 500), or when the client goes away (code ERR_STREAM_PREMATURE_CLOSE, EPIPE or
 * ECONNRESET) or the send fails after the headers (the caller destroys the
 * socket).
 */
export async function sendFileBody(res: ServerResponse, socket: Socket, filePath: string, start: number, end: number): Promise<void> {
  const file = await open(filePath, 'r');
  try {
    res.flushHeaders();
    await flushed(socket);
    if (res.destroyed || socket.destroyed) throw Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    await new Promise<void>((resolve, reject) => {
      const closed = () => transfer.abort();
      const transfer = new (nativeBinding().FileSend)(descriptorOf(socket), file.fd, start, end - start + 1, (error) => {
        res.off('close', closed);
        if (error === null) resolve();
        else if (error.code === 'ECANCELED') reject(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
        else reject(error);
      });
      res.once('close', closed);
    });
    // Ended before the file is closed (a trip to the thread pool): a keep-alive client's next request waits for this end.
    res.end();
  } finally {
    await file.close();
  }
}
