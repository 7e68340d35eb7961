// PacketSocket: see packet_socket.h for the JavaScript surface.
//
// Opening order (each step before the next, so no unfiltered packet is ever queued):
//   1. socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0). Protocol 0 means the
//      socket is not hooked into the receive path at all: it receives nothing until bind()
//      names a protocol. So there is nothing to drain between socket() and the filter, unlike
//      the usual socket(..., htons(ETH_P_ALL)) which starts queueing every frame at once.
//   2. SO_ATTACH_FILTER with the classic-BPF program built in TypeScript.
//   3. PACKET_IGNORE_OUTGOING, SO_RCVBUF(FORCE), SO_TIMESTAMPNS.
//   4. bind() with sll_protocol = htons(ETH_P_ALL) and the interface index (0: every
//      interface of this network namespace). Only from here on does the kernel deliver, and
//      every packet it delivers has been through the filter.
//
// Reading: uv_poll on the non-blocking descriptor; each wake-up makes ONE recvmmsg() call for
// at most `batch` packets and delivers them in one JavaScript callback, as one Buffer (the
// packet bytes back to back) plus one Uint32Array of per-packet metadata. If more packets are
// queued, libuv's level-triggered poll wakes us again on the next loop iteration, after timers
// and other I/O have had their turn: a flood cannot starve the loop.
//
// Why plain reads and not a PACKET_RX_RING (TPACKET_V3) ring: the filter accepts only
// handshake initiations, small (<= 216 bytes) and, even under attack, rate-limited by what a
// gateway can afford to verify; the copy recvmmsg makes is a few hundred bytes per packet and
// one syscall per batch. A V3 ring would pin megabytes per socket, deliver in blocks retired
// by a timeout (latency) or when full, and bring its own frame-status protocol; its advantage
// (no copy, no syscall per batch) matters for captures that pass floods of large frames, which
// this one is designed never to do. bench/capture.ts measures what plain reads deliver.
//
// Closing: uv_poll_stop() first (libuv removes the descriptor from epoll there), then a last
// PACKET_STATISTICS read, then close(2), then uv_close() whose callback only frees the handle
// memory. No JavaScript callback runs after close(): the flag is checked on every wake-up and
// the poll is no longer started.
//
// Errors: an error from the socket (the bound interface went down or was deleted: the kernel
// sets ENETDOWN on the socket; libuv reports POLLERR as a failed poll) is read with SO_ERROR
// and delivered to JavaScript as the callback's first argument; the poll is not restarted,
// and TypeScript decides what to do (it closes the capture).
#include "packet_socket.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace jitguard {
namespace {

// Per-packet metadata words in the Uint32Array handed to JavaScript.
constexpr uint32_t kMetaOffset = 0;    // byte offset of the packet in the data Buffer
constexpr uint32_t kMetaCaptured = 1;  // bytes present in the data Buffer
constexpr uint32_t kMetaLength = 2;    // length on the wire (network header onwards)
constexpr uint32_t kMetaIfindex = 3;   // sockaddr_ll.sll_ifindex
constexpr uint32_t kMetaPkttype = 4;   // sockaddr_ll.sll_pkttype (PACKET_HOST = 0, ...)
constexpr uint32_t kMetaProtocol = 5;  // ethertype, host order (0x0800, 0x86dd)
constexpr uint32_t kMetaSeconds = 6;   // receive time (kernel SO_TIMESTAMPNS), CLOCK_REALTIME
constexpr uint32_t kMetaNanos = 7;
constexpr uint32_t kMetaStride = 8;

constexpr uint32_t kMaxBatch = 1024;
constexpr uint32_t kMaxSlot = 65536;

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PacketSocket",
                       {
                           InstanceMethod<&PacketSocket::JsRef>("ref"),
                           InstanceMethod<&PacketSocket::JsUnref>("unref"),
                           InstanceMethod<&PacketSocket::Stats>("stats"),
                           InstanceMethod<&PacketSocket::Close>("close"),
                           InstanceAccessor<&PacketSocket::IsClosed>("closed"),
                           StaticMethod<&PacketSocket::InterfaceIndex>("interfaceIndex"),
                           StaticMethod<&PacketSocket::InterfaceName>("interfaceName"),
                       });
  }

  explicit PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
    Napi::Env env = info.Env();
    // TypeScript validated everything; these checks only keep a direct caller from crashing.
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsFunction() ||
        !info[3].IsObject()) {
      throw Napi::TypeError::New(env, "PacketSocket(ifindex, filter, onPackets, options)");
    }
    const uint32_t ifindex = info[0].As<Napi::Number>().Uint32Value();
    Napi::Buffer<uint8_t> filter = info[1].As<Napi::Buffer<uint8_t>>();
    Napi::Object options = info[3].As<Napi::Object>();
    batch_ = options.Get("batch").As<Napi::Number>().Uint32Value();
    slot_ = options.Get("slot").As<Napi::Number>().Uint32Value();
    const uint32_t rcvbuf = options.Get("rcvbuf").As<Napi::Number>().Uint32Value();
    if (filter.Length() == 0 || filter.Length() % sizeof(sock_filter) != 0 ||
        filter.Length() / sizeof(sock_filter) > BPF_MAXINSNS) {
      throw Napi::TypeError::New(env, "filter: a whole number (1..4096) of 8-byte sock_filter entries");
    }
    if (batch_ == 0 || batch_ > kMaxBatch || slot_ == 0 || slot_ > kMaxSlot || rcvbuf > (1u << 30)) {
      throw Napi::TypeError::New(env, "options: batch 1..1024, slot 1..65536, rcvbuf <= 1 GiB");
    }

    // The program is copied (the kernel copies it too, in SO_ATTACH_FILTER), so its Buffer
    // may be reused by JavaScript at once.
    std::vector<sock_filter> program(filter.Length() / sizeof(sock_filter));
    memcpy(program.data(), filter.Data(), filter.Length());

    Open(env, ifindex, program, rcvbuf);

    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "jitguard:PacketSocket");
    // The socket keeps its JavaScript object alive while it is open: a capture that is being
    // read from must not be collected. close() drops this reference.
    Napi::ObjectWrap<PacketSocket>::Ref();
    napi_add_env_cleanup_hook(env, &PacketSocket::EnvCleanup, this);
    hooked_ = true;
  }

  ~PacketSocket() override { CloseNow(); }

 private:
  void Open(Napi::Env env, uint32_t ifindex, const std::vector<sock_filter>& program, uint32_t rcvbuf) {
    fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw ErrnoError(env, errno, "socket");

    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(program.size());
    fprog.filter = const_cast<sock_filter*>(program.data());
    if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) Fail(env, "setsockopt(SO_ATTACH_FILTER)");

    // Our own transmissions are never handshakes we receive; the kernel then does not even
    // clone them for us. ENOPROTOOPT (kernels before 4.20): the filter's pkttype test covers it.
    const int one = 1;
    if (setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) != 0 && errno != ENOPROTOOPT) {
      Fail(env, "setsockopt(PACKET_IGNORE_OUTGOING)");
    }
    if (rcvbuf > 0) {
      const int size = static_cast<int>(rcvbuf);
      // SO_RCVBUFFORCE exceeds net.core.rmem_max but needs CAP_NET_ADMIN; else the capped one.
      if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0 &&
          setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0) {
        Fail(env, "setsockopt(SO_RCVBUF)");
      }
    }
    if (setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0) Fail(env, "setsockopt(SO_TIMESTAMPNS)");

    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = static_cast<int>(ifindex);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) Fail(env, "bind");

    // Receive state, allocated once.
    data_.resize(static_cast<size_t>(batch_) * slot_);
    iov_.resize(batch_);
    names_.resize(batch_);
    control_.resize(static_cast<size_t>(batch_) * kControlSize);
    messages_.resize(batch_);
    for (uint32_t i = 0; i < batch_; i++) {
      iov_[i].iov_base = data_.data() + static_cast<size_t>(i) * slot_;
      iov_[i].iov_len = slot_;
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      close(fd_);
      fd_ = -1;
      throw Napi::Error::New(env, "PacketSocket: no event loop");
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      Fail(env, "uv_poll_init", -rc);
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, &PacketSocket::OnPoll);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), &PacketSocket::FreeHandle);
      poll_ = nullptr;
      Fail(env, "uv_poll_start", -rc);
    }
  }

  // Closes the descriptor and throws the errno error for `syscall`.
  [[noreturn]] void Fail(Napi::Env env, const char* syscall, int err = 0) {
    if (err == 0) err = errno;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    throw ErrnoError(env, err, syscall);
  }

  static void FreeHandle(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static void EnvCleanup(void* self) {
    auto* socket = static_cast<PacketSocket*>(self);
    socket->hooked_ = false;
    socket->CloseNow();
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<PacketSocket*>(handle->data);
    if (self == nullptr || self->fd_ < 0) return;
    if (status < 0) {
      // libuv stops the poll itself on POLLERR. Read (and clear) the socket's error.
      int err = 0;
      socklen_t length = sizeof(err);
      if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &length) != 0 || err == 0) err = -status;
      self->DeliverError(err, "poll");
      return;
    }
    self->Drain();
  }

  void Drain() {
    for (uint32_t i = 0; i < batch_; i++) {
      msghdr& header = messages_[i].msg_hdr;
      header.msg_name = &names_[i];
      header.msg_namelen = sizeof(sockaddr_ll);
      header.msg_iov = &iov_[i];
      header.msg_iovlen = 1;
      header.msg_control = control_.data() + static_cast<size_t>(i) * kControlSize;
      header.msg_controllen = kControlSize;
      header.msg_flags = 0;
      messages_[i].msg_len = 0;
    }
    // MSG_TRUNC: msg_len is the packet's real length even when the slot truncated it.
    int count = recvmmsg(fd_, messages_.data(), batch_, MSG_TRUNC, nullptr);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      const int err = errno;
      uv_poll_stop(poll_);
      DeliverError(err, "recvmmsg");
      return;
    }
    if (count == 0) return;
    wakeups_with_packets_++;

    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    size_t total = 0;
    for (int i = 0; i < count; i++) total += Captured(i);
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, total == 0 ? 1 : total);
    Napi::ArrayBuffer metaBuffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(count) * kMetaStride * 4);
    auto* meta = static_cast<uint32_t*>(metaBuffer.Data());
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
      const size_t captured = Captured(i);
      memcpy(data.Data() + offset, iov_[i].iov_base, captured);
      uint32_t* m = meta + static_cast<size_t>(i) * kMetaStride;
      m[kMetaOffset] = static_cast<uint32_t>(offset);
      m[kMetaCaptured] = static_cast<uint32_t>(captured);
      m[kMetaLength] = messages_[i].msg_len;
      m[kMetaIfindex] = static_cast<uint32_t>(names_[i].sll_ifindex);
      m[kMetaPkttype] = names_[i].sll_pkttype;
      m[kMetaProtocol] = ntohs(names_[i].sll_protocol);
      timespec when = ReceiveTime(messages_[i].msg_hdr);
      m[kMetaSeconds] = static_cast<uint32_t>(when.tv_sec);
      m[kMetaNanos] = static_cast<uint32_t>(when.tv_nsec);
      offset += captured;
    }
    Napi::Uint32Array metaArray = Napi::Uint32Array::New(env, static_cast<size_t>(count) * kMetaStride, metaBuffer, 0);
    Call({env.Null(), data, metaArray});
  }

  size_t Captured(int i) const {
    const size_t length = messages_[i].msg_len;
    return length < slot_ ? length : slot_;
  }

  static timespec ReceiveTime(const msghdr& header) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec when;
        memcpy(&when, CMSG_DATA(c), sizeof(when));
        return when;
      }
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return now;
  }

  void DeliverError(int err, const char* syscall) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Error error = ErrnoError(env, err, syscall);
    Call({error.Value()});
  }

  // Calls onPackets as a proper async callback (microtasks run after it). An exception thrown
  // by it becomes an uncaught exception, as for any event-loop callback.
  void Call(std::initializer_list<napi_value> args) {
    if (fd_ < 0 || callback_.IsEmpty()) return;
    try {
      callback_.MakeCallback(Value(), args, *context_);
    } catch (const Napi::Error& error) {
      napi_fatal_exception(Env(), error.Value());
    }
  }

  void ReadStatistics() {
    if (fd_ < 0) return;
    tpacket_stats stats{};
    socklen_t length = sizeof(stats);
    // The kernel resets the counters on every read: accumulate. tp_packets already includes
    // tp_drops (both count packets that passed the filter).
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0) {
      packets_ += stats.tp_packets;
      drops_ += stats.tp_drops;
    }
  }

  void CloseNow() {
    if (fd_ < 0) return;
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);  // removes the descriptor from epoll before it is closed
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), &PacketSocket::FreeHandle);
      poll_ = nullptr;
    }
    ReadStatistics();
    close(fd_);
    fd_ = -1;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) {
      CloseNow();
      if (hooked_) {
        napi_remove_env_cleanup_hook(info.Env(), &PacketSocket::EnvCleanup, this);
        hooked_ = false;
      }
      callback_.Reset();
      Napi::ObjectWrap<PacketSocket>::Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    ReadStatistics();
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("packets", Napi::Number::New(env, static_cast<double>(packets_)));
    result.Set("drops", Napi::Number::New(env, static_cast<double>(drops_)));
    result.Set("wakeups", Napi::Number::New(env, static_cast<double>(wakeups_with_packets_)));
    return result;
  }

  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), fd_ < 0); }

  static Napi::Value InterfaceIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "interfaceIndex(name)");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    if (name.empty() || name.size() >= IF_NAMESIZE) throw ErrnoError(env, ENODEV, "if_nametoindex");
    unsigned int index = if_nametoindex(name.c_str());
    if (index == 0) throw ErrnoError(env, errno, "if_nametoindex");
    return Napi::Number::New(env, index);
  }

  static Napi::Value InterfaceName(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "interfaceName(index)");
    char name[IF_NAMESIZE] = {0};
    if (if_indextoname(info[0].As<Napi::Number>().Uint32Value(), name) == nullptr) {
      throw ErrnoError(env, errno, "if_indextoname");
    }
    return Napi::String::New(env, name);
  }

  static constexpr size_t kControlSize = CMSG_SPACE(sizeof(timespec));

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  bool hooked_ = false;
  uint32_t batch_ = 0;
  uint32_t slot_ = 0;
  uint64_t packets_ = 0;
  uint64_t drops_ = 0;
  uint64_t wakeups_with_packets_ = 0;
  std::vector<uint8_t> data_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_ll> names_;
  std::vector<uint8_t> control_;
  std::vector<mmsghdr> messages_;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitPacketSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", PacketSocket::Define(env));
}

}  // namespace jitguard
