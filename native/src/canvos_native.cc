// canvos-lite optional native accelerator (N-API, no C++ wrapper library).
// Exposes chunk compressors that run on the libuv thread pool:
//   gzip(buf, level, cb)   -> one complete gzip member (libdeflate; levels 1..12)
//   zlib(buf, level, cb)   -> one complete zlib stream (libdeflate; levels 1..12): squashfs gzip blocks, adler32
//                             computed on the worker thread too
//   zstd(buf, level, cb)   -> one complete zstd frame (libzstd; levels 1..19)
// and a synchronous streaming zstd decoder (Node 20's zlib has no zstd):
//   new ZstdDecoder().push(buf) -> Buffer, .end() -> throws if the stream is truncated
// The JS side (src/native/load.ts) picks this addon when present and CANVOS_NO_NATIVE is unset.
#include <node_api.h>
#include <libdeflate.h>
#include <zstd.h>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#define NAPI_CALL(env, call)                                        \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      napi_throw_error((env), nullptr, "canvos_native: " #call);    \
      return nullptr;                                               \
    }                                                               \
  } while (0)

namespace {

enum class Algo { Gzip, Zlib, Zstd };

struct CompressWork {
  napi_async_work work = nullptr;
  napi_ref input_ref = nullptr;
  napi_ref cb_ref = nullptr;
  const uint8_t* in = nullptr;
  size_t in_len = 0;
  int level = 6;
  Algo algo = Algo::Gzip;
  uint8_t* out = nullptr;
  size_t out_len = 0;
  std::string error;
};

// Idle libdeflate compressors per level, reused across chunks (allocating one per chunk costs more than compressing
// a small chunk at low levels; levels 10..12 allocate megabytes of matchfinder state). At most one per thread-pool
// thread and level ever exists; they live as long as the process. A compressor keeps no data between calls.
// Never destroyed: a pool thread may still compress while the process runs its exit handlers.
std::mutex idle_mutex;
auto* const idle = new std::vector<libdeflate_compressor*>[13];

libdeflate_compressor* TakeCompressor(int level) {
  if (level < 1 || level > 12) return nullptr;
  {
    std::lock_guard<std::mutex> lock(idle_mutex);
    if (!idle[level].empty()) {
      libdeflate_compressor* c = idle[level].back();
      idle[level].pop_back();
      return c;
    }
  }
  return libdeflate_alloc_compressor(level);
}

void GiveBackCompressor(int level, libdeflate_compressor* c) {
  std::lock_guard<std::mutex> lock(idle_mutex);
  idle[level].push_back(c);
}

void ExecuteCompress(napi_env, void* data) {
  auto* w = static_cast<CompressWork*>(data);
  if (w->algo == Algo::Gzip || w->algo == Algo::Zlib) {
    libdeflate_compressor* c = TakeCompressor(w->level);
    if (!c) { w->error = "libdeflate_alloc_compressor failed (bad level?)"; return; }
    const bool gz = w->algo == Algo::Gzip;
    size_t bound = gz ? libdeflate_gzip_compress_bound(c, w->in_len) : libdeflate_zlib_compress_bound(c, w->in_len);
    w->out = static_cast<uint8_t*>(malloc(bound));
    if (w->out)
      w->out_len = gz ? libdeflate_gzip_compress(c, w->in, w->in_len, w->out, bound)
                      : libdeflate_zlib_compress(c, w->in, w->in_len, w->out, bound);
    GiveBackCompressor(w->level, c);
    if (!w->out) { w->error = "out of memory"; return; }
    if (w->out_len == 0) w->error = gz ? "libdeflate_gzip_compress failed" : "libdeflate_zlib_compress failed";
  } else {
    size_t bound = ZSTD_compressBound(w->in_len);
    w->out = static_cast<uint8_t*>(malloc(bound));
    if (!w->out) { w->error = "out of memory"; return; }
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    // Content size in the frame header and a checksum make each frame self-verifying.
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, w->level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    size_t r = ZSTD_compress2(cctx, w->out, bound, w->in, w->in_len);
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(r)) w->error = ZSTD_getErrorName(r); else w->out_len = r;
  }
}

void FinalizeBuffer(napi_env, void* data, void*) { free(data); }

void CompleteCompress(napi_env env, napi_status, void* data) {
  auto* w = static_cast<CompressWork*>(data);
  napi_value cb, global, args[2];
  napi_get_reference_value(env, w->cb_ref, &cb);
  napi_get_global(env, &global);
  if (!w->error.empty()) {
    napi_value msg;
    napi_create_string_utf8(env, w->error.c_str(), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, nullptr, msg, &args[0]);
    napi_get_undefined(env, &args[1]);
    free(w->out);
  } else {
    napi_get_null(env, &args[0]);
    // Hand the malloc'd block to JS without a copy; freed by the finalizer.
    napi_create_external_buffer(env, w->out_len, w->out, FinalizeBuffer, nullptr, &args[1]);
  }
  napi_call_function(env, global, cb, 2, args, nullptr);
  napi_delete_reference(env, w->cb_ref);
  napi_delete_reference(env, w->input_ref);
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value StartCompress(napi_env env, napi_callback_info info, Algo algo) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) { napi_throw_type_error(env, nullptr, "expected (buffer, level, callback)"); return nullptr; }
  bool is_buf = false;
  napi_is_buffer(env, argv[0], &is_buf);
  if (!is_buf) { napi_throw_type_error(env, nullptr, "first argument must be a Buffer"); return nullptr; }
  auto* w = new CompressWork();
  w->algo = algo;
  void* data = nullptr;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &data, &w->in_len));
  w->in = static_cast<const uint8_t*>(data);
  int32_t level = 6;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &level));
  w->level = level;
  // Keep the input alive while the worker thread reads it.
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &w->input_ref));
  NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &w->cb_ref));
  napi_value name;
  const char* label = algo == Algo::Gzip ? "canvos:gzip" : algo == Algo::Zlib ? "canvos:zlib" : "canvos:zstd";
  NAPI_CALL(env, napi_create_string_utf8(env, label, NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_create_async_work(env, nullptr, name, ExecuteCompress, CompleteCompress, w, &w->work));
  NAPI_CALL(env, napi_queue_async_work(env, w->work));
  return nullptr;
}

napi_value Gzip(napi_env env, napi_callback_info info) { return StartCompress(env, info, Algo::Gzip); }
napi_value Zlib(napi_env env, napi_callback_info info) { return StartCompress(env, info, Algo::Zlib); }
napi_value Zstd(napi_env env, napi_callback_info info) { return StartCompress(env, info, Algo::Zstd); }

// ---- streaming zstd decoder ----
struct Decoder {
  ZSTD_DStream* ds = nullptr;
  bool mid_frame = false;
};

void DecoderFinalize(napi_env, void* data, void*) {
  auto* d = static_cast<Decoder*>(data);
  if (d->ds) ZSTD_freeDStream(d->ds);
  delete d;
}

napi_value DecoderNew(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  auto* d = new Decoder();
  d->ds = ZSTD_createDStream();
  ZSTD_initDStream(d->ds);
  NAPI_CALL(env, napi_wrap(env, self, d, DecoderFinalize, nullptr, nullptr));
  return self;
}

napi_value DecoderPush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Decoder* d = nullptr;
  NAPI_CALL(env, napi_unwrap(env, self, reinterpret_cast<void**>(&d)));
  void* data = nullptr;
  size_t len = 0;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &data, &len));
  ZSTD_inBuffer in = {data, len, 0};
  std::vector<uint8_t> out;
  const size_t step = ZSTD_DStreamOutSize();
  // Feed all input, then keep draining while the decoder fills whole output steps (data buffered inside it).
  for (;;) {
    size_t old = out.size();
    out.resize(old + step);
    ZSTD_outBuffer ob = {out.data() + old, step, 0};
    size_t before = in.pos;
    size_t r = ZSTD_decompressStream(d->ds, &ob, &in);
    out.resize(old + ob.pos);
    if (ZSTD_isError(r)) { napi_throw_error(env, "ERR_ZSTD", ZSTD_getErrorName(r)); return nullptr; }
    // A call that moved no data returns the next frame's header hint even at a frame boundary: only calls that
    // consumed input or produced output tell whether we are inside a frame.
    if (ob.pos > 0 || in.pos > before) d->mid_frame = r != 0;
    if (in.pos >= in.size && ob.pos < step) break;
  }
  napi_value result;
  void* dst = nullptr;
  NAPI_CALL(env, napi_create_buffer_copy(env, out.size(), out.data(), &dst, &result));
  return result;
}

napi_value DecoderEnd(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  Decoder* d = nullptr;
  NAPI_CALL(env, napi_unwrap(env, self, reinterpret_cast<void**>(&d)));
  if (d->mid_frame) { napi_throw_error(env, "ERR_ZSTD", "zstd stream is truncated"); return nullptr; }
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"gzip", nullptr, Gzip, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"zlib", nullptr, Zlib, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"zstd", nullptr, Zstd, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, fns);
  napi_property_descriptor methods[] = {
      {"push", nullptr, DecoderPush, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"end", nullptr, DecoderEnd, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls;
  napi_define_class(env, "ZstdDecoder", NAPI_AUTO_LENGTH, DecoderNew, nullptr, 2, methods, &cls);
  napi_set_named_property(env, exports, "ZstdDecoder", cls);
  napi_value ver;
  napi_create_string_utf8(env, LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &ver);
  napi_set_named_property(env, exports, "libdeflateVersion", ver);
  napi_value zver;
  napi_create_string_utf8(env, ZSTD_versionString(), NAPI_AUTO_LENGTH, &zver);
  napi_set_named_property(env, exports, "zstdVersion", zver);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
