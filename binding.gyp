{
  "targets": [
    {
      "target_name": "credwatch_audit",
      "sources": [
        "native/addon.cc",
        "native/audit_socket.cc",
        "native/control.cc",
        "native/errors.cc",
        "native/reader_thread.cc",
        "native/datagram_receiver.cc",
        "native/sd_notify.cc",
        "native/surrogate_escape.cc",
        "native/capabilities.cc",
        "native/text.cc",
        "native/record_fields.cc",
        "native/literal_set.cc",
        "native/triage.cc",
        "native/triage_js.cc",
        "native/proc_snapshot.cc",
        "native/proc_snapshot_js.cc",
        "native/repeat_cache.cc",
        "native/replay_events.cc",
        "native/replay_events_js.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS!='linux'", {"type": "none", "sources!": ["native/addon.cc"]}]
      ]
    }
  ]
}
