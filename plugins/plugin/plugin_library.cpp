// The logger finder TensorRT hands a plugin library when it loads it; getCreators, the other exported entry
// point, is the registration list above the ops (ops/registry.cpp), so this shared base includes no op.
// Nothing here links libnvinfer.
#include <NvInferRuntime.h>

#include "plugin_base.h"

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  sparsetrt::plugin::setLoggerFinder(finder);
}
