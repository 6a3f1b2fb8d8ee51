using System.Runtime.CompilerServices;
using Microsoft.ML.SDfp.Runtime;

namespace Microsoft.ML.SDfp.Training;

internal static class TorchSharpModuleInitializer
{
#pragma warning disable CA2255 // This assembly calls torch directly, so it cannot rely on the numerics assembly having run its own initializer first.
    [ModuleInitializer]
    internal static void Initialize() => TorchSharpRuntime.TryEnsureLoaded();
#pragma warning restore CA2255
}
