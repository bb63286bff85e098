{
  "targets": [
    {
      "target_name": "rackboot_native",
      "sources": ["addon.c", "udp_device.c", "tftp_endpoint.c", "udp_segments.c", "send_file.c", "privileges.c", "udp_batch.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
