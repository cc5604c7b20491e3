// sparsetrt tensor files (docs/tensor_files.md): named arrays in one small binary format, read and written
// by sparsetrt.runtime.save_tensors / load_tensors on the Python side. Little-endian:
//
//   magic "SPTRTTNS" (8 bytes), uint32 version = 1, uint32 count
//   count times: uint32 name length, name (UTF-8), uint32 dtype (ONNX TensorProto code), uint32 ndim,
//                int64 dims[ndim], uint64 nbytes, nbytes of data (C order)
//
// Header-only, C++17, no dependencies. Errors throw std::runtime_error naming the file and the problem.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparsetrt_example
{

// ONNX TensorProto element types (the codes the format uses).
enum class DType : uint32_t
{
    kFloat32 = 1,
    kUInt8 = 2,
    kInt8 = 3,
    kInt32 = 6,
    kInt64 = 7,
    kBool = 9,
    kFloat16 = 10,
    kFloat64 = 11,
};

inline size_t dtypeSize(DType t)
{
    switch (t)
    {
    case DType::kFloat32:
    case DType::kInt32: return 4;
    case DType::kUInt8:
    case DType::kInt8:
    case DType::kBool: return 1;
    case DType::kInt64:
    case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    }
    throw std::runtime_error("unknown tensor dtype code " + std::to_string(static_cast<uint32_t>(t)));
}

inline char const* dtypeName(DType t)
{
    switch (t)
    {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    }
    return "unknown";
}

struct Tensor
{
    std::string name;
    DType dtype{DType::kFloat32};
    std::vector<int64_t> dims;
    std::vector<uint8_t> data; // nbytes = volume(dims) * dtypeSize(dtype)

    int64_t volume() const
    {
        int64_t v = 1;
        for (int64_t d : dims)
        {
            v *= d;
        }
        return v;
    }
};

constexpr char kMagic[8] = {'S', 'P', 'T', 'R', 'T', 'T', 'N', 'S'};
constexpr uint32_t kVersion = 1;

namespace detail
{
// The format is little-endian; so are x86-64 and aarch64 (Jetson), the targets of this example.
template <typename T>
T read(std::ifstream& in, std::string const& path, char const* what)
{
    T value{};
    in.read(reinterpret_cast<char*>(&value), sizeof(T));
    if (!in)
    {
        throw std::runtime_error(path + ": truncated while reading " + what);
    }
    return value;
}

template <typename T>
void write(std::ofstream& out, T value)
{
    out.write(reinterpret_cast<char const*>(&value), sizeof(T));
}
} // namespace detail

inline std::vector<Tensor> readTensorFile(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw std::runtime_error("cannot open tensor file " + path);
    }
    char magic[8];
    in.read(magic, 8);
    if (!in || std::memcmp(magic, kMagic, 8) != 0)
    {
        throw std::runtime_error(path + " is not a sparsetrt tensor file (bad magic)");
    }
    auto const version = detail::read<uint32_t>(in, path, "the version");
    if (version != kVersion)
    {
        throw std::runtime_error(path + ": tensor file version " + std::to_string(version) + ", expected 1");
    }
    auto const count = detail::read<uint32_t>(in, path, "the tensor count");
    std::vector<Tensor> tensors(count);
    for (auto& t : tensors)
    {
        auto const nameLength = detail::read<uint32_t>(in, path, "a name length");
        t.name.resize(nameLength);
        in.read(t.name.data(), nameLength);
        t.dtype = static_cast<DType>(detail::read<uint32_t>(in, path, "a dtype"));
        size_t const itemSize = dtypeSize(t.dtype);
        auto const ndim = detail::read<uint32_t>(in, path, "a rank");
        t.dims.resize(ndim);
        for (auto& d : t.dims)
        {
            d = detail::read<int64_t>(in, path, "a dim");
            if (d < 0)
            {
                throw std::runtime_error(path + ": tensor " + t.name + " has a negative dim");
            }
        }
        auto const nbytes = detail::read<uint64_t>(in, path, "a byte count");
        if (nbytes != static_cast<uint64_t>(t.volume()) * itemSize)
        {
            throw std::runtime_error(path + ": tensor " + t.name + " has " + std::to_string(nbytes)
                + " bytes, its dtype and dims need " + std::to_string(t.volume() * itemSize));
        }
        t.data.resize(nbytes);
        in.read(reinterpret_cast<char*>(t.data.data()), static_cast<std::streamsize>(nbytes));
        if (!in)
        {
            throw std::runtime_error(path + ": truncated in the data of tensor " + t.name);
        }
    }
    return tensors;
}

inline void writeTensorFile(std::string const& path, std::vector<Tensor> const& tensors)
{
    std::ofstream out(path, std::ios::binary);
    if (!out)
    {
        throw std::runtime_error("cannot write tensor file " + path);
    }
    out.write(kMagic, 8);
    detail::write<uint32_t>(out, kVersion);
    detail::write<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
    for (auto const& t : tensors)
    {
        detail::write<uint32_t>(out, static_cast<uint32_t>(t.name.size()));
        out.write(t.name.data(), static_cast<std::streamsize>(t.name.size()));
        detail::write<uint32_t>(out, static_cast<uint32_t>(t.dtype));
        detail::write<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
        for (int64_t d : t.dims)
        {
            detail::write<int64_t>(out, d);
        }
        detail::write<uint64_t>(out, static_cast<uint64_t>(t.data.size()));
        out.write(reinterpret_cast<char const*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    }
    if (!out)
    {
        throw std::runtime_error("failed writing tensor file " + path);
    }
}

} // namespace sparsetrt_example
