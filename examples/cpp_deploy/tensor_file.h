// sparsetrt tensor files (docs/tensor_files.md): named arrays in one small binary format, read and written
// by sparsetrt.runtime.save_tensors / load_tensors on the Python side. Little-endian:
//
//   magic "SPTRTTNS" (8 bytes), uint32 version = 1, uint32 count
//   count times: uint32 name length, name (UTF-8), uint32 dtype (ONNX TensorProto code), uint32 ndim,
//                int64 dims[ndim], uint64 nbytes, nbytes of data (C order)
//
// Header-only, C++17, no dependencies. Errors throw std::runtime_error naming the file and the problem; the
// reader checks every length against the bytes that are there before it allocates anything, and
// fuzz_tensor_file.cpp (libFuzzer) keeps it that way.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparsetrt_example {

// ONNX TensorProto element types (the codes the format uses).
enum class DType : uint32_t {
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
};

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kUInt8:
    case DType::kInt8:
    case DType::kBool:
      return 1;
    case DType::kInt64:
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
      return 2;
  }
  throw std::runtime_error("unknown tensor dtype code " + std::to_string(static_cast<uint32_t>(t)));
}

inline char const* dtypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kUInt8:
      return "uint8";
    case DType::kInt8:
      return "int8";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
    case DType::kFloat16:
      return "float16";
    case DType::kFloat64:
      return "float64";
  }
  return "unknown";
}

struct Tensor {
  std::string name;
  DType dtype{DType::kFloat32};
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // nbytes = volume(dims) * dtypeSize(dtype)

  // The element count; the reader has checked it fits (see kMaxTensorBytes).
  int64_t volume() const {
    int64_t v = 1;
    for (int64_t d : dims) {
      v *= d;
    }
    return v;
  }
};

constexpr char kMagic[8] = {'S', 'P', 'T', 'R', 'T', 'T', 'N', 'S'};
constexpr uint32_t kVersion = 1;
// Limits every reader shares (docs/tensor_files.md): numpy's 64 dims, and 2^62 bytes for the product of the
// non-zero dims times the item size, so no size computation can overflow 64 bits.
constexpr uint32_t kMaxDims = 64;
constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 62;

namespace detail {
// A bounds-checked cursor over the file's bytes: every read says what it was reading when the file ends, and
// nothing is allocated before the bytes it describes are known to be there.
class Reader {
 public:
  Reader(uint8_t const* data, size_t size, std::string where) : mData(data), mSize(size), mWhere(std::move(where)) {}

  [[noreturn]] void fail(std::string const& what) const { throw std::runtime_error(mWhere + ": " + what); }

  size_t left() const { return mSize - mPos; }

  size_t pos() const { return mPos; }

  uint8_t const* take(size_t n, std::string const& what) {
    if (n > left()) {
      fail("truncated at byte " + std::to_string(mPos) + " while reading " + what + " (" + std::to_string(n) +
           " bytes needed, " + std::to_string(left()) + " left)");
    }
    uint8_t const* p = mData + mPos;
    mPos += n;
    return p;
  }

  // The format is little-endian; so are x86-64 and aarch64 (Jetson), the targets of this example.
  template <typename T>
  T read(std::string const& what) {
    T value{};
    std::memcpy(&value, take(sizeof(T), what), sizeof(T));
    return value;
  }

 private:
  uint8_t const* mData;
  size_t mSize;
  size_t mPos{0};
  std::string mWhere;
};

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF (as Python's decoder).
inline bool isUtf8(std::string const& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto const c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size())  // the continuation bytes must be there
    {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      auto const b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace detail

// Parses a whole tensor file held in memory; `where` names it in errors. Refuses (std::runtime_error) what the
// Python reader refuses: another magic or version, an unknown dtype, more than kMaxDims dims, a negative dim,
// a tensor over kMaxTensorBytes, a byte count that does not match the dims, a name that is not UTF-8 or
// appears twice, a truncated record and bytes after the last tensor.
inline std::vector<Tensor> parseTensorFile(uint8_t const* data, size_t size, std::string const& where) {
  detail::Reader in(data, size, where);
  if (size < sizeof(kMagic) || std::memcmp(data, kMagic, sizeof(kMagic)) != 0) {
    throw std::runtime_error(where + " is not a sparsetrt tensor file (bad magic)");
  }
  in.take(sizeof(kMagic), "the magic number");
  auto const version = in.read<uint32_t>("the version");
  if (version != kVersion) {
    in.fail("tensor file version " + std::to_string(version) + ", expected 1");
  }
  auto const count = in.read<uint32_t>("the tensor count");
  std::vector<Tensor> tensors;
  for (uint32_t i = 0; i < count; ++i) {
    Tensor t;
    std::string const which = "tensor " + std::to_string(i);
    auto const nameLength = in.read<uint32_t>(which + "'s name length");
    auto const* name = in.take(nameLength, which + "'s name");
    t.name.assign(reinterpret_cast<char const*>(name), nameLength);
    if (!detail::isUtf8(t.name)) {
      in.fail(which + "'s name is not UTF-8");
    }
    auto const code = in.read<uint32_t>("tensor " + t.name + "'s dtype");
    t.dtype = static_cast<DType>(code);
    size_t itemSize = 0;
    try {
      itemSize = dtypeSize(t.dtype);
    } catch (std::runtime_error const&) {
      in.fail("tensor " + t.name + " has unknown dtype code " + std::to_string(code));
    }
    auto const ndim = in.read<uint32_t>("tensor " + t.name + "'s rank");
    if (ndim > kMaxDims) {
      in.fail("tensor " + t.name + " has " + std::to_string(ndim) + " dims, more than " + std::to_string(kMaxDims));
    }
    uint64_t volume = 1;          // all dims
    uint64_t nonZero = itemSize;  // bytes of the non-zero dims: what the size limit applies to
    for (uint32_t d = 0; d < ndim; ++d) {
      auto const dim = in.read<int64_t>("tensor " + t.name + "'s dims");
      if (dim < 0) {
        in.fail("tensor " + t.name + " has a negative dim");
      }
      t.dims.push_back(dim);
      auto const u = static_cast<uint64_t>(dim);
      if (u != 0 && (nonZero > kMaxTensorBytes / u || nonZero * u > kMaxTensorBytes)) {
        in.fail("tensor " + t.name + " is too large (its dims hold more than 2^62 bytes)");
      }
      nonZero = u == 0 ? nonZero : nonZero * u;
      volume *= u;  // <= nonZero / itemSize, or 0: no overflow
    }
    auto const nbytes = in.read<uint64_t>("tensor " + t.name + "'s byte count");
    if (nbytes != volume * itemSize) {
      in.fail("tensor " + t.name + " has " + std::to_string(nbytes) + " bytes, its dtype and dims need " +
              std::to_string(volume * itemSize));
    }
    for (auto const& other : tensors) {
      if (other.name == t.name) {
        in.fail("tensor name " + t.name + " appears twice");
      }
    }
    auto const* bytes = in.take(static_cast<size_t>(nbytes), "the data of tensor " + t.name);
    t.data.assign(bytes, bytes + nbytes);
    tensors.push_back(std::move(t));
  }
  if (in.left() != 0) {
    in.fail(std::to_string(in.left()) + " bytes of trailing data after " + std::to_string(count) + " tensors");
  }
  return tensors;
}

inline std::vector<Tensor> readTensorFile(std::string const& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    throw std::runtime_error("cannot open tensor file " + path);
  }
  auto const size = static_cast<std::streamoff>(in.tellg());
  if (size < 0) {
    throw std::runtime_error("cannot read tensor file " + path);
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (!in) {
    throw std::runtime_error("cannot read tensor file " + path);
  }
  return parseTensorFile(bytes.data(), bytes.size(), path);
}

// The bytes of a tensor file holding `tensors`; parseTensorFile(serializeTensorFile(t)) == t.
inline std::vector<uint8_t> serializeTensorFile(std::vector<Tensor> const& tensors) {
  std::vector<uint8_t> out;
  auto put = [&out](void const* p, size_t n) {
    auto const* b = static_cast<uint8_t const*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto putU32 = [&put](uint32_t v) { put(&v, sizeof(v)); };
  put(kMagic, sizeof(kMagic));
  putU32(kVersion);
  putU32(static_cast<uint32_t>(tensors.size()));
  for (auto const& t : tensors) {
    putU32(static_cast<uint32_t>(t.name.size()));
    put(t.name.data(), t.name.size());
    putU32(static_cast<uint32_t>(t.dtype));
    putU32(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) {
      put(&d, sizeof(d));
    }
    auto const nbytes = static_cast<uint64_t>(t.data.size());
    put(&nbytes, sizeof(nbytes));
    put(t.data.data(), t.data.size());
  }
  return out;
}

inline void writeTensorFile(std::string const& path, std::vector<Tensor> const& tensors) {
  std::vector<uint8_t> const bytes = serializeTensorFile(tensors);
  std::ofstream out(path, std::ios::binary);
  if (!out) {
    throw std::runtime_error("cannot write tensor file " + path);
  }
  out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    throw std::runtime_error("failed writing tensor file " + path);
  }
}

}  // namespace sparsetrt_example
