using System.Runtime.CompilerServices;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training;

namespace Microsoft.ML.SDfp;

internal static class TorchSharpModuleInitializer
{
#pragma warning disable CA2255 // The ML.NET stage calls torch directly, so it cannot rely on the numerics assembly having run its own initializer first.
    [ModuleInitializer]
    internal static void Initialize() => TorchSharpRuntime.TryEnsureLoaded();
#pragma warning restore CA2255
}
