// Test hook for native/proc_snapshot.h: the /proc reads the reader thread does per SYSCALL record, run
// on given records against a given /proc tree, with a fake kill(pid, 0) when asked.
#pragma once

#include <napi.h>

namespace credwatch {

// procSnapshots(procRoot, syscallTexts[], probe?: {gone: number[], denied: number[]})
//   -> {snapshots: string[], probed: number[], skippedGone}
// `probe` stands for kill(pid, 0): ESRCH for `gone`, EPERM for `denied`, success otherwise; `probed`
// lists the pids it was asked about, in order. Without `probe` the real rule applies (kill() only for
// the /proc of our own pid namespace, so never for a fake tree).
Napi::Value ProcSnapshotsJs(const Napi::CallbackInfo& info);

}  // namespace credwatch
