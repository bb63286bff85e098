#ifndef RACKBOOT_NATIVE_H
#define RACKBOOT_NATIVE_H
#include <node_api.h>

/* Each file adds its functions to the addon's exports. */
void register_udp_device(napi_env env, napi_value exports);
void register_tftp_endpoint(napi_env env, napi_value exports);
void register_send_file(napi_env env, napi_value exports);

#endif
