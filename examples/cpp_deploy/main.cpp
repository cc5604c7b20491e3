// sparsetrt C++ deployment example: run a sparsetrt engine with no Python, as a Jetson application would.
//
//   sparsetrt_deploy MODEL.engine LIBSPARSETRT_PLUGINS.so INPUTS.bin OUTPUTS.bin [--iterations N]
//
// 1. load the plugin library into TensorRT's plugin registry (IPluginRegistry::loadLibrary),
// 2. deserialize the engine and create an execution context,
// 3. read voxel features and coordinates from a tensor file (docs/tensor_files.md; write one with
//    `sparsetrt export --save-inputs` or sparsetrt.runtime.save_tensors),
// 4. run: input shapes and addresses set, every output through an IOutputAllocator, because a sparse
//    output's row count (the sites a strided conv creates) is known only once the engine has run,
// 5. write the outputs to a tensor file (compare them with `sparsetrt run model.onnx --save ...`).
//
// With --iterations N it also times N more runs (CUDA events) and prints the mean latency.
// Inputs must be valid voxels: coordinates inside the grid, no site twice (`sparsetrt run` checks them in
// Python; this example checks names, types and shapes only).

#include "tensor_file.h"

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
using sparsetrt_example::DType;
using sparsetrt_example::Tensor;

void checkCuda(cudaError_t status, char const* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, char const* message) noexcept override {
    if (severity <= Severity::kWARNING) {
      std::cerr << "[TensorRT] " << message << "\n";
    }
  }
};

// Device memory for outputs whose size TensorRT tells us while the engine runs. Buffers only grow, so
// repeated runs of similar frames allocate nothing.
class OutputAllocator : public nvinfer1::IOutputAllocator {
 public:
  ~OutputAllocator() override {
    for (auto& entry : mBuffers) {
      cudaFree(entry.second.ptr);
    }
  }

  void* reallocateOutputAsync(char const* tensorName, void* /*currentMemory*/, uint64_t size, uint64_t /*alignment*/,
                              cudaStream_t /*stream*/) noexcept override {
    Buffer& buffer = mBuffers[tensorName];
    if (buffer.size < size) {
      cudaFree(buffer.ptr);  // cudaMalloc's alignment (256 bytes) satisfies TensorRT's
      buffer.ptr = nullptr;
      buffer.size = 0;
      if (cudaMalloc(&buffer.ptr, size) != cudaSuccess) {
        return nullptr;  // TensorRT reports the failed allocation
      }
      buffer.size = size;
    }
    return buffer.ptr;
  }

  void notifyShape(char const* tensorName, nvinfer1::Dims const& dims) noexcept override { mShapes[tensorName] = dims; }

  void* buffer(std::string const& name) const {
    auto it = mBuffers.find(name);
    return it == mBuffers.end() ? nullptr : it->second.ptr;
  }

  nvinfer1::Dims const& shape(std::string const& name) const {
    auto it = mShapes.find(name);
    if (it == mShapes.end()) {
      throw std::runtime_error("TensorRT did not report the shape of output " + name);
    }
    return it->second;
  }

 private:
  struct Buffer {
    void* ptr{nullptr};
    uint64_t size{0};
  };
  std::map<std::string, Buffer> mBuffers;
  std::map<std::string, nvinfer1::Dims> mShapes;
};

DType toFileType(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT:
      return DType::kFloat32;
    case nvinfer1::DataType::kHALF:
      return DType::kFloat16;
    case nvinfer1::DataType::kINT32:
      return DType::kInt32;
    case nvinfer1::DataType::kINT64:
      return DType::kInt64;
    case nvinfer1::DataType::kINT8:
      return DType::kInt8;
    case nvinfer1::DataType::kUINT8:
      return DType::kUInt8;
    case nvinfer1::DataType::kBOOL:
      return DType::kBool;
    default:
      throw std::runtime_error("the engine has a tensor type this example does not handle");
  }
}

std::string dimsString(std::vector<int64_t> const& dims) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    s << (i ? ", " : "") << dims[i];
  }
  return s.str() + "]";
}

std::vector<char> readFile(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open " + path);
  }
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct DeviceBuffer {
  void* ptr{nullptr};
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }
};

int run(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0]
              << " MODEL.engine LIBSPARSETRT_PLUGINS.so INPUTS.bin OUTPUTS.bin [--iterations N]\n";
    return 2;
  }
  std::string const enginePath = argv[1], pluginPath = argv[2], inputPath = argv[3], outputPath = argv[4];
  int iterations = 0;
  if (argc >= 7 && std::string(argv[5]) == "--iterations") {
    iterations = std::atoi(argv[6]);
  }

  Logger logger;
  std::unique_ptr<nvinfer1::IRuntime> runtime{nvinfer1::createInferRuntime(logger)};
  if (!runtime) {
    throw std::runtime_error("createInferRuntime failed");
  }
  // Our library registers its plugin creators when the registry loads it (getCreators); it must be
  // loaded before the engine, whose layers name those creators.
  if (runtime->getPluginRegistry().loadLibrary(pluginPath.c_str()) == nullptr) {
    throw std::runtime_error("TensorRT could not load plugin library " + pluginPath + " (message above)");
  }
  std::vector<char> const blob = readFile(enginePath);
  std::unique_ptr<nvinfer1::ICudaEngine> engine{runtime->deserializeCudaEngine(blob.data(), blob.size())};
  if (!engine) {
    throw std::runtime_error("could not deserialize " + enginePath +
                             ": an engine runs only with the TensorRT version (and flavour) that built it, on a GPU");
  }
  // Everything the execution context uses must outlive it, and C++ destroys locals in reverse order of
  // declaration: the output allocator (TensorRT keeps a pointer to it, and its buffers hold the outputs) and
  // the input buffers are declared before the context, so they are destroyed after it.
  OutputAllocator allocator;
  std::vector<DeviceBuffer> inputBuffers(static_cast<size_t>(engine->getNbIOTensors()));
  std::unique_ptr<nvinfer1::IExecutionContext> context{engine->createExecutionContext()};
  if (!context) {
    throw std::runtime_error("could not create an execution context");
  }

  std::map<std::string, Tensor> inputs;
  for (auto& t : sparsetrt_example::readTensorFile(inputPath)) {
    inputs[t.name] = std::move(t);
  }

  cudaStream_t stream{};
  checkCuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  std::vector<std::string> outputNames;
  for (int32_t i = 0; i < engine->getNbIOTensors(); ++i) {
    std::string const name = engine->getIOTensorName(i);
    if (engine->getTensorIOMode(name.c_str()) == nvinfer1::TensorIOMode::kOUTPUT) {
      outputNames.push_back(name);
      if (!context->setOutputAllocator(name.c_str(), &allocator)) {
        throw std::runtime_error("setOutputAllocator failed for " + name);
      }
      continue;
    }
    auto it = inputs.find(name);
    if (it == inputs.end()) {
      throw std::runtime_error(inputPath + " has no tensor named " + name + ", an input of the engine");
    }
    Tensor const& t = it->second;
    DType const want = toFileType(engine->getTensorDataType(name.c_str()));
    if (t.dtype != want) {
      throw std::runtime_error("input " + name + " is " + sparsetrt_example::dtypeName(t.dtype) +
                               ", the engine takes " + sparsetrt_example::dtypeName(want));
    }
    nvinfer1::Dims dims{};
    dims.nbDims = static_cast<int32_t>(t.dims.size());
    for (size_t d = 0; d < t.dims.size(); ++d) {
      dims.d[d] = t.dims[d];
    }
    if (!context->setInputShape(name.c_str(), dims)) {
      throw std::runtime_error(
          "the engine refused shape " + dimsString(t.dims) + " for input " + name +
          " (outside its optimization profile? rebuild with `sparsetrt build --voxels MIN:OPT:MAX`)");
    }
    DeviceBuffer& buffer = inputBuffers[static_cast<size_t>(i)];
    checkCuda(cudaMalloc(&buffer.ptr, t.data.empty() ? 1 : t.data.size()), "cudaMalloc");
    checkCuda(cudaMemcpyAsync(buffer.ptr, t.data.data(), t.data.size(), cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync");
    context->setTensorAddress(name.c_str(), buffer.ptr);
  }

  if (!context->enqueueV3(stream)) {
    throw std::runtime_error("enqueueV3 failed (TensorRT's message is above)");
  }
  checkCuda(cudaStreamSynchronize(stream), "running the engine");

  std::vector<Tensor> outputs;
  for (auto const& name : outputNames) {
    Tensor t;
    t.name = name;
    t.dtype = toFileType(engine->getTensorDataType(name.c_str()));
    nvinfer1::Dims const& dims = allocator.shape(name);
    t.dims.assign(dims.d, dims.d + dims.nbDims);
    t.data.resize(static_cast<size_t>(t.volume()) * sparsetrt_example::dtypeSize(t.dtype));
    if (!t.data.empty()) {
      checkCuda(cudaMemcpy(t.data.data(), allocator.buffer(name), t.data.size(), cudaMemcpyDeviceToHost),
                "copying an output to the host");
    }
    std::cout << "output " << name << ": " << sparsetrt_example::dtypeName(t.dtype) << " " << dimsString(t.dims)
              << "\n";
    outputs.push_back(std::move(t));
  }
  sparsetrt_example::writeTensorFile(outputPath, outputs);
  std::cout << "wrote " << outputs.size() << " outputs to " << outputPath << "\n";

  if (iterations > 0) {
    cudaEvent_t start{}, stop{};
    checkCuda(cudaEventCreate(&start), "cudaEventCreate");
    checkCuda(cudaEventCreate(&stop), "cudaEventCreate");
    checkCuda(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int i = 0; i < iterations; ++i) {
      if (!context->enqueueV3(stream)) {
        throw std::runtime_error("enqueueV3 failed while timing");
      }
    }
    checkCuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    checkCuda(cudaEventSynchronize(stop), "timing");
    float ms = 0.F;
    checkCuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    std::cout << "mean latency over " << iterations << " runs: " << ms / static_cast<float>(iterations) << " ms\n";
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  cudaStreamDestroy(stream);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (std::exception const& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
