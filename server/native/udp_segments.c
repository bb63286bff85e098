/*
 * A window of TFTP DATA packets in one system call, with UDP generic
 * segmentation offload (UDP_SEGMENT, Linux 4.18).
 *
 * Why this exists: with windows the server sends up to 64 DATA packets per
 * ACK, and dgram makes one sendmsg(2) per packet, each with its own route
 * lookup and socket buffer accounting. A transfer's window buffer already
 * holds each block as a whole packet (4-byte header, then the block) in
 * consecutive slots of one buffer, so a run of slots is exactly what
 * UDP_SEGMENT wants: one buffer cut into datagrams of `segmentSize` bytes
 * (the last may be shorter) by the kernel or the NIC.
 *
 *   openUdp4(address)    a UDP socket bound to address and an ephemeral port,
 *                        as a descriptor for dgram's bind({ fd })
 *   sendSegments(fd, buffer, segmentSize, port, address)
 *                        bytes sent (the whole buffer), or -errno: EAGAIN when
 *                        the socket buffer has no room for all of it,
 *                        EINVAL/EIO when the path cannot take such segments
 *                        (segment plus headers larger than the MTU, or a
 *                        device without checksum offload); the caller then
 *                        sends the packets one by one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static napi_value open_udp4(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  struct sockaddr_in local;
  memset(&local, 0, sizeof local);
  local.sin_family = AF_INET;
  if (argc != 1 || !rb_get_ipv4(env, argv[0], &local.sin_addr)) {
    napi_throw_type_error(env, NULL, "openUdp4(address): a dotted IPv4 address");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return rb_throw_errno(env, errno, "socket", "");
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int error = errno;
    close(fd);
    return rb_throw_errno(env, error, "bind", "");
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value send_segments(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd;
  void *data;
  size_t length;
  uint32_t segment_size;
  struct sockaddr_in to;
  if (argc != 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &segment_size) != napi_ok || !rb_get_sockaddr(env, argv[3], argv[4], &to) || segment_size == 0 ||
      segment_size > 65507 || length > 65507) {
    napi_throw_type_error(env, NULL, "sendSegments(fd, buffer, segmentSize, port, address): at most 65507 bytes");
    return NULL;
  }
  struct iovec part = { data, length };
  union {
    char buffer[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_name = &to;
  message.msg_namelen = sizeof to;
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  if (length > segment_size) {
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_UDP;
    header->cmsg_type = UDP_SEGMENT;
    header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = (uint16_t)segment_size;
    memcpy(CMSG_DATA(header), &size, sizeof size);
  }
  ssize_t sent;
  do sent = sendmsg(fd, &message, MSG_DONTWAIT);
  while (sent < 0 && errno == EINTR);
  napi_value result;
  napi_create_int64(env, sent < 0 ? -errno : (int64_t)sent, &result);
  return result;
}

void register_udp_segments(napi_env env, napi_value exports) {
  napi_value function;
  napi_create_function(env, "openUdp4", NAPI_AUTO_LENGTH, open_udp4, NULL, &function);
  napi_set_named_property(env, exports, "openUdp4", function);
  napi_create_function(env, "sendSegments", NAPI_AUTO_LENGTH, send_segments, NULL, &function);
  napi_set_named_property(env, exports, "sendSegments", function);
}
