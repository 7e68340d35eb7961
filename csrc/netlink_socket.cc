// NetlinkSocket: open(protocol), exchange(messages) -> Promise<{ replies, completed }>, close().
//
// exchange() sends the given, fully encoded netlink messages one at a time, and after each
// one reads replies until the kernel has finished with it: the NLMSG_ERROR (acknowledgement
// or error) or NLMSG_DONE carrying that message's sequence number. It stops at the first
// message the kernel rejects, so `completed` says exactly how many messages took effect;
// TypeScript turns that into a precise partial-failure report. Sending one message at a time
// (rather than a burst) keeps the socket's receive queue from overflowing with acks and
// matches how the kernel processes generic-netlink requests: synchronously, in sendmsg().
//
// Replies may carry the interface private key (a WireGuard GET_DEVICE dump includes it for
// a caller with CAP_NET_ADMIN), so every native buffer that held reply or request bytes is
// wiped before it is released.
#include "netlink_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace jitguard {
namespace {

using Bytes = std::vector<uint8_t>;

void Wipe(Bytes& bytes) {
  if (!bytes.empty()) explicit_bzero(bytes.data(), bytes.size());
  bytes.clear();
}

// Shared between the JS object and any exchange in flight, so close() during an exchange
// defers the close(2) until the worker has finished with the descriptor.
struct SocketState {
  std::mutex exchange_lock;  // one exchange at a time per socket
  int fd = -1;
  int in_flight = 0;          // touched only on the JS thread
  bool close_requested = false;
};

class ExchangeWorker : public Napi::AsyncWorker {
 public:
  ExchangeWorker(Napi::Env env, std::shared_ptr<SocketState> state, std::vector<Bytes> messages)
      : Napi::AsyncWorker(env, "jitguard:netlink.exchange"),
        deferred_(Napi::Promise::Deferred::New(env)),
        state_(std::move(state)),
        messages_(std::move(messages)) {}

  ~ExchangeWorker() override {
    for (Bytes& m : messages_) Wipe(m);
    for (Bytes& r : replies_) Wipe(r);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::lock_guard<std::mutex> guard(state_->exchange_lock);
    Bytes buffer(65536);
    for (Bytes& message : messages_) {
      const auto* request = reinterpret_cast<const nlmsghdr*>(message.data());
      const uint32_t seq = request->nlmsg_seq;
      if (!SendAll(message)) return;
      Wipe(message);
      bool finished = false;
      bool rejected = false;
      while (!finished) {
        ssize_t size = ReceiveOne(buffer);
        if (size < 0) return;
        if (KeepIfOurs(buffer, static_cast<size_t>(size), seq, &finished, &rejected)) {
          replies_.emplace_back(buffer.begin(), buffer.begin() + size);
        }
        explicit_bzero(buffer.data(), static_cast<size_t>(size));
      }
      if (rejected) return;  // later messages are not sent: the caller learns `completed`
      completed_++;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    FinishOnJsThread();
    if (errno_ != 0) {
      Napi::Error error = ErrnoError(env, errno_, syscall_);
      error.Set("completed", Napi::Number::New(env, completed_));
      deferred_.Reject(error.Value());
      return;
    }
    Napi::Array replies = Napi::Array::New(env, replies_.size());
    for (size_t i = 0; i < replies_.size(); i++) {
      replies.Set(i, Napi::Buffer<uint8_t>::Copy(env, replies_[i].data(), replies_[i].size()));
      Wipe(replies_[i]);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("replies", replies);
    result.Set("completed", Napi::Number::New(env, completed_));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    FinishOnJsThread();
    deferred_.Reject(error.Value());
  }

 private:
  void FinishOnJsThread() {
    state_->in_flight--;
    if (state_->in_flight == 0 && state_->close_requested && state_->fd >= 0) {
      close(state_->fd);
      state_->fd = -1;
    }
  }

  bool Fail(const char* syscall) {
    errno_ = errno;
    syscall_ = syscall;
    return false;
  }

  bool SendAll(const Bytes& message) {
    for (;;) {
      ssize_t n = send(state_->fd, message.data(), message.size(), 0);
      if (n >= 0) return true;
      if (errno != EINTR) return Fail("sendmsg");
    }
  }

  // Reads one datagram, growing `buffer` first if the pending datagram is larger.
  ssize_t ReceiveOne(Bytes& buffer) {
    for (;;) {
      ssize_t pending = recv(state_->fd, buffer.data(), buffer.size(), MSG_PEEK | MSG_TRUNC);
      if (pending < 0) {
        if (errno == EINTR) continue;
        Fail("recvmsg");
        return -1;
      }
      if (static_cast<size_t>(pending) > buffer.size()) buffer.resize(static_cast<size_t>(pending));
      ssize_t n = recv(state_->fd, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        Fail("recvmsg");
        return -1;
      }
      return n;
    }
  }

  // Walks the messages of one datagram. Returns whether any belongs to the request with
  // sequence `seq` (datagrams left over from an earlier, aborted exchange are dropped), and
  // whether that request is now finished (DONE, or an ERROR which is an ack when error == 0).
  static bool KeepIfOurs(const Bytes& buffer, size_t size, uint32_t seq, bool* finished, bool* rejected) {
    bool ours = false;
    size_t offset = 0;
    while (offset + sizeof(nlmsghdr) <= size) {
      const auto* header = reinterpret_cast<const nlmsghdr*>(buffer.data() + offset);
      if (header->nlmsg_len < sizeof(nlmsghdr) || offset + header->nlmsg_len > size) break;
      if (header->nlmsg_seq == seq) {
        ours = true;
        if (header->nlmsg_type == NLMSG_DONE) {
          *finished = true;
        } else if (header->nlmsg_type == NLMSG_ERROR) {
          *finished = true;
          if (header->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
            const int error = *reinterpret_cast<const int*>(NLMSG_DATA(header));
            if (error != 0) *rejected = true;
          }
        }
      }
      offset += NLMSG_ALIGN(header->nlmsg_len);
    }
    return ours;
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SocketState> state_;
  std::vector<Bytes> messages_;
  std::vector<Bytes> replies_;
  uint32_t completed_ = 0;
  int errno_ = 0;
  const char* syscall_ = "";
};

// Creates a socket inside the network namespace at `netns_path` (e.g. /run/netns/gw), then
// returns the calling thread to its own namespace. A socket keeps the namespace it was created
// in for its whole life, so this is all it takes to manage WireGuard in another namespace.
// setns() affects only the calling (JS) thread, and only for these few system calls.
int SocketInNamespace(const std::string& netns_path, int protocol, int* failed_errno, const char** failed_call) {
  auto fail = [&](const char* call) {
    *failed_errno = errno;
    *failed_call = call;
    return -1;
  };
  if (netns_path.empty()) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    return fd < 0 ? fail("socket") : fd;
  }
  int target = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) return fail("open");
  int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) {
    const int err = errno;
    close(target);
    errno = err;
    return fail("open");
  }
  int fd = -1;
  if (setns(target, CLONE_NEWNET) < 0) {
    fail("setns");
  } else {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) fail("socket");
    if (setns(original, CLONE_NEWNET) < 0) abort();  // cannot continue in the wrong namespace
  }
  close(target);
  close(original);
  return fd;
}

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {InstanceMethod<&NetlinkSocket::Exchange>("exchange"),
                        InstanceMethod<&NetlinkSocket::Close>("close")});
  }

  // new NetlinkSocket(protocol: number, receiveBufferBytes: number, netnsPath: string)
  // ('' for the caller's own namespace)
  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    const int protocol = info[0].As<Napi::Number>().Int32Value();
    const int receive_buffer = info[1].As<Napi::Number>().Int32Value();
    const std::string netns_path = info[2].As<Napi::String>().Utf8Value();
    state_ = std::make_shared<SocketState>();
    int failed_errno = 0;
    const char* failed_call = "";
    int fd = SocketInNamespace(netns_path, protocol, &failed_errno, &failed_call);
    if (fd < 0) throw ErrnoError(env, failed_errno, failed_call);
    const int one = 1;
    // Extended acks carry the kernel's own explanation of a rejection; capped acks keep an
    // error reply from echoing the whole request (which may hold keys) back to us.
    // NETLINK_CAP_ACK is required (Linux 4.3+): without it an error could echo keys back.
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one)) < 0) {
      const int err = errno;
      close(fd);
      throw ErrnoError(env, err, "setsockopt");
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof(receive_buffer)) < 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
      const int err = errno;
      close(fd);
      throw ErrnoError(env, err, "bind");
    }
    state_->fd = fd;
  }

  ~NetlinkSocket() override {
    // Garbage-collected without close(): close now, or when the last exchange (which shares
    // `state_`) finishes.
    state_->close_requested = true;
    if (state_->fd >= 0 && state_->in_flight == 0) {
      close(state_->fd);
      state_->fd = -1;
    }
  }

 private:
  // exchange(messages: Buffer[]): Promise<{ replies: Buffer[], completed: number }>
  Napi::Value Exchange(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_->fd < 0 || state_->close_requested) {
      throw ErrnoError(env, EBADF, "sendmsg");
    }
    Napi::Array array = info[0].As<Napi::Array>();
    std::vector<Bytes> messages;
    messages.reserve(array.Length());
    try {
      for (uint32_t i = 0; i < array.Length(); i++) {
        Napi::Uint8Array view = array.Get(i).As<Napi::Uint8Array>();
        if (view.ByteLength() < sizeof(nlmsghdr)) {
          throw Napi::TypeError::New(env, "netlink message shorter than its header");
        }
        const auto* header = reinterpret_cast<const nlmsghdr*>(view.Data());
        // Every message must be answered (an ack or a dump's DONE): that is how an exchange
        // knows a message is finished, and how no error is ever left unread.
        if ((header->nlmsg_flags & NLM_F_ACK) == 0 && (header->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP) {
          throw Napi::TypeError::New(env, "netlink message without NLM_F_ACK or NLM_F_DUMP");
        }
        messages.emplace_back(view.Data(), view.Data() + view.ByteLength());
      }
    } catch (...) {
      for (Bytes& m : messages) Wipe(m);
      throw;
    }
    auto* worker = new ExchangeWorker(env, state_, std::move(messages));
    state_->in_flight++;
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // close(): idempotent; deferred until in-flight exchanges finish.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    state_->close_requested = true;
    if (state_->in_flight == 0 && state_->fd >= 0) {
      close(state_->fd);
      state_->fd = -1;
    }
    return info.Env().Undefined();
  }

  std::shared_ptr<SocketState> state_;
};

}  // namespace

void InitNetlinkSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace jitguard
