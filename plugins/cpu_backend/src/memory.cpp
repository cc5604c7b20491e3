// Device memory of the CPU backend: bounds-checked allocations (see internal.h).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SPT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SPT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SPT_POISON(p, n) ((void)(p), (void)(n))
#define SPT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sparsetrt {
namespace cpu {
namespace {

constexpr std::size_t kGranule = 256;                             // cudaMalloc's alignment
constexpr unsigned char kFresh = 0xA5;                            // new memory: not zeros, not -1, as on a GPU
constexpr unsigned char kFill = 0xCD;                             // around the allocation: checked for writes
constexpr std::size_t kQuarantineBytes = std::size_t{512} << 20;  // freed memory kept inaccessible

struct Allocation {
  char* map = nullptr;  // the whole mapping: [guard page][fill | user | fill][guard page]
  std::size_t map_bytes = 0;
  char* user = nullptr;   // what cudaMalloc returned
  std::size_t bytes = 0;  // what was asked for
  std::size_t data_bytes() const { return map_bytes - 2 * pageSize(); }
  char* data() const { return map + pageSize(); }
  static std::size_t pageSize() {
    static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return page;
  }
};

std::mutex g_mutex;
std::map<uintptr_t, Allocation> g_live;  // by user address
std::deque<Allocation> g_freed;          // quarantine, oldest first
std::size_t g_freed_bytes = 0;

const Allocation* containing(uintptr_t p, std::size_t bytes) {
  auto it = g_live.upper_bound(p);
  if (it == g_live.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  const uintptr_t base = reinterpret_cast<uintptr_t>(a.user);
  return p - base <= a.bytes && bytes <= a.bytes - (p - base) ? &a : nullptr;
}

std::string nearest(uintptr_t p) {
  char buf[256];
  const Allocation* best = nullptr;
  uintptr_t best_distance = UINTPTR_MAX;
  for (const auto& [base, a] : g_live) {
    const uintptr_t end = base + a.bytes;
    const uintptr_t d = p < base ? base - p : (p > end ? p - end : 0);
    if (d < best_distance) best_distance = d, best = &a;
  }
  if (best == nullptr) return "no device memory is allocated";
  const uintptr_t base = reinterpret_cast<uintptr_t>(best->user);
  if (p >= base)
    std::snprintf(buf, sizeof buf, "the nearest allocation, %zu bytes at %p, ends %" PRIuPTR " bytes before it",
                  best->bytes, static_cast<void*>(best->user), p - base - best->bytes);
  else
    std::snprintf(buf, sizeof buf, "the nearest allocation, %zu bytes at %p, starts %" PRIuPTR " bytes after it",
                  best->bytes, static_cast<void*>(best->user), base - p);
  return buf;
}

bool intact(const char* p, std::size_t n, std::size_t* first_bad) {
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<unsigned char>(p[i]) != kFill) {
      *first_bad = i;
      return false;
    }
  return true;
}

}  // namespace

void* deviceAlloc(std::size_t bytes) {
  const std::size_t page = Allocation::pageSize();
  const std::size_t granules = (std::max<std::size_t>(bytes, 1) + kGranule - 1) / kGranule * kGranule;
  const std::size_t data = (granules + page - 1) / page * page;
  void* m = mmap(nullptr, data + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  Allocation a;
  a.map = static_cast<char*>(m);
  a.map_bytes = data + 2 * page;
  a.bytes = bytes;
  a.user = a.data() + (data - granules);  // the last granule ends at the trailing guard page
  mprotect(a.map, page, PROT_NONE);
  mprotect(a.data() + data, page, PROT_NONE);
  std::memset(a.data(), kFill, a.user - a.data());
  std::memset(a.user, kFresh, bytes);
  std::memset(a.user + bytes, kFill, granules - bytes);
  SPT_POISON(a.data(), a.user - a.data());
  SPT_POISON(a.user + bytes, granules - bytes);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_live[reinterpret_cast<uintptr_t>(a.user)] = a;
  return a.user;
}

bool deviceFree(void* ptr) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_live.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == g_live.end()) return false;
  Allocation a = it->second;
  g_live.erase(it);
  SPT_UNPOISON(a.data(), a.data_bytes());
  mprotect(a.map, a.map_bytes, PROT_NONE);
  g_freed.push_back(a);
  g_freed_bytes += a.map_bytes;
  while (g_freed_bytes > kQuarantineBytes && !g_freed.empty()) {
    munmap(g_freed.front().map, g_freed.front().map_bytes);
    g_freed_bytes -= g_freed.front().map_bytes;
    g_freed.pop_front();
  }
  return true;
}

cudaError_t checkDeviceRange(const char* api, const char* what, const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto u = reinterpret_cast<uintptr_t>(p);
  if (containing(u, bytes) != nullptr) return cudaSuccess;
  const Allocation* start = containing(u, 0);
  if (start != nullptr)
    report("%s: %s [%p, +%zu) runs %zu bytes past the end of the %zu-byte allocation at %p", api, what, p, bytes,
           static_cast<std::size_t>(u + bytes - reinterpret_cast<uintptr_t>(start->user) - start->bytes), start->bytes,
           static_cast<void*>(start->user));
  else
    report("%s: %s [%p, +%zu) is not device memory: %s", api, what, p, bytes, nearest(u).c_str());
  return cudaErrorInvalidValue;
}

bool overlapsDeviceMemory(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto u = reinterpret_cast<uintptr_t>(p);
  auto it = g_live.lower_bound(u + std::max<std::size_t>(bytes, 1));
  if (it == g_live.begin()) return false;
  --it;
  return reinterpret_cast<uintptr_t>(it->second.user) + std::max<std::size_t>(it->second.bytes, 1) > u;
}

bool isDevicePointerOrNull(const void* p) {
  if (p == nullptr) return true;
  std::lock_guard<std::mutex> lock(g_mutex);
  return containing(reinterpret_cast<uintptr_t>(p), 0) != nullptr;
}

bool checkGuards(const char* what) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const auto& [base, a] : g_live) {
    const std::size_t head = a.user - a.data();
    const std::size_t tail = (a.data() + a.data_bytes()) - (a.user + a.bytes);
    std::size_t bad = 0;
    SPT_UNPOISON(a.data(), head);
    SPT_UNPOISON(a.user + a.bytes, tail);
    const bool head_ok = intact(a.data(), head, &bad);
    const std::size_t head_bad = head - bad;
    const bool tail_ok = head_ok && intact(a.user + a.bytes, tail, &bad);
    SPT_POISON(a.data(), head);
    SPT_POISON(a.user + a.bytes, tail);
    if (!head_ok) {
      report("%s wrote %zu bytes before the start of the %zu-byte allocation at %p", what, head_bad, a.bytes,
             static_cast<void*>(a.user));
      return false;
    }
    if (!tail_ok) {
      report("%s wrote past the end of the %zu-byte allocation at %p (first at byte %zu after its end)", what, a.bytes,
             static_cast<void*>(a.user), bad);
      return false;
    }
  }
  return true;
}

std::string describeAddress(const void* p) {
  // Called from the fault handler: never wait for the lock.
  std::unique_lock<std::mutex> lock(g_mutex, std::try_to_lock);
  if (!lock.owns_lock()) return "";
  const auto u = reinterpret_cast<uintptr_t>(p);
  char buf[256];
  for (const auto& [base, a] : g_live) {
    const auto lo = reinterpret_cast<uintptr_t>(a.map), hi = lo + a.map_bytes;
    if (u < lo || u >= hi) continue;
    if (u >= base + a.bytes)
      std::snprintf(buf, sizeof buf, "%" PRIuPTR " bytes past the end of the %zu-byte device allocation at %p",
                    u - base - a.bytes, a.bytes, static_cast<void*>(a.user));
    else
      std::snprintf(buf, sizeof buf, "%" PRIuPTR " bytes before the start of the %zu-byte device allocation at %p",
                    base - u, a.bytes, static_cast<void*>(a.user));
    return buf;
  }
  for (const Allocation& a : g_freed) {
    const auto lo = reinterpret_cast<uintptr_t>(a.map);
    if (u >= lo && u < lo + a.map_bytes) {
      std::snprintf(buf, sizeof buf, "inside the freed %zu-byte device allocation at %p (use after cudaFree)", a.bytes,
                    static_cast<void*>(a.user));
      return buf;
    }
  }
  return "";
}

}  // namespace cpu
}  // namespace sparsetrt
