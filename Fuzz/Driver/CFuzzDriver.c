// Declarations only (include/CFuzzDriver.h): LLVMFuzzerRunDriver is in libFuzzer's runtime.
#include "CFuzzDriver.h"
