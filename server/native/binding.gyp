{
  "targets": [
    {
      "target_name": "rackboot_native",
      "sources": ["udp_device.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
