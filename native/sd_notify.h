// sd_notify(3) without libsystemd: one datagram to the unix socket systemd names in $NOTIFY_SOCKET.
// Node has no unix datagram sockets, which is the only reason this lives in native code.
#pragma once

#include <string>

namespace credwatch {

// `path` is a filesystem path or "@name" for an abstract socket. Throws SysError.
void SendNotify(const std::string& path, const std::string& state);

}  // namespace credwatch
