// AuditSocket: the JavaScript-visible owner of one NETLINK_AUDIT reading socket, its reader thread
// and the ThreadSafeFunction that carries batches to JavaScript. No policy lives here: which status
// fields to change, which rules to add and what to restore is decided in src/sources/netlink.ts.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "batch.h"
#include "reader_thread.h"

namespace credwatch {

class AuditSocket;
void DeliverToJs(Napi::Env env, Napi::Function onBatch, AuditSocket* self, Batch* batch);
using BatchTsfn = Napi::TypedThreadSafeFunction<AuditSocket, Batch, DeliverToJs>;

class AuditSocket : public Napi::ObjectWrap<AuditSocket>, public BatchSink {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit AuditSocket(const Napi::CallbackInfo& info);
  ~AuditSocket() override;

  SubmitResult Submit(Batch* batch) override;  // reader thread

 private:
  friend void DeliverToJs(Napi::Env env, Napi::Function onBatch, AuditSocket* self, Batch* batch);

  enum class State { kIdle, kRunning, kClosed };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetCounters(const Napi::CallbackInfo& info);
  Napi::Value RefMethod(const Napi::CallbackInfo& info);
  Napi::Value UnrefMethod(const Napi::CallbackInfo& info);
  Napi::Value PortId(const Napi::CallbackInfo& info);
  Napi::Value SetTriage(const Napi::CallbackInfo& info);

  void RegisterAsDaemon(Batch* first);  // unicast: AUDIT_SET pid from the reading socket
  void Shutdown();                      // joins the thread, releases the TSFN, closes the fds
  void CloseFds();
  void ReportJsError(Napi::Env env, Napi::Value error);
  static void OnEnvCleanup(void* arg);
  static void OnTsfnFinalized(Napi::Env env, void* data, AuditSocket* self);

  bool multicast_ = false;
  size_t queueLimit_ = 64;
  bool blockWhenFull_ = false;
  bool procSnapshots_ = false;
  size_t batchMaxRecords_ = 256;
  int receiveBuffer_ = 4 << 20;
  State state_ = State::kIdle;
  bool cleanupHookAdded_ = false;
  bool tsfnRefed_ = true;
  napi_env env_ = nullptr;
  int fd_ = -1;
  int wakeFd_ = -1;
  uint32_t portId_ = 0;

  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;
  Napi::FunctionReference onClosed_;
  BatchTsfn tsfn_;
  Counters counters_;
  BatchPool pool_{66};  // resized to queueLimit + 2 in the constructor
  ReaderThread reader_;
  std::u16string scratch_;  // JS thread only: UTF-16 buffer for non-ASCII record text
};

}  // namespace credwatch
