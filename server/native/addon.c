/* rackboot's native addon: the functions of each file, as one module. */
#include "native.h"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  register_udp_device(env, exports);
  register_tftp_endpoint(env, exports);
  register_send_file(env, exports);
  return exports;
}
