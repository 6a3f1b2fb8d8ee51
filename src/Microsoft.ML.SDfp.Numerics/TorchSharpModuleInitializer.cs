using System.Runtime.CompilerServices;
using Microsoft.ML.SDfp.Runtime;

namespace Microsoft.ML.SDfp.Numerics;

internal static class TorchSharpModuleInitializer
{
#pragma warning disable CA2255 // The quantisation kernels call torch directly, and the loader now lives in its own assembly, whose initializer runs only once something touches it.
    [ModuleInitializer]
    internal static void Initialize() => TorchSharpRuntime.TryEnsureLoaded();
#pragma warning restore CA2255
}
