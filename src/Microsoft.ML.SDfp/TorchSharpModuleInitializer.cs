using System.Runtime.CompilerServices;
using Microsoft.ML.SDfp.Numerics.Runtime;

namespace Microsoft.ML.SDfp;

internal static class TorchSharpModuleInitializer
{
#pragma warning disable CA2255 // The ML.NET stage calls torch directly, so it cannot rely on the numerics assembly having run its own initializer first.
    [ModuleInitializer]
    internal static void Initialize()
    {
        try
        {
            TorchSharpRuntime.EnsureLoaded();
        }
        catch (NativeLoadException)
        {
            // Rethrown with its clear message by the next explicit EnsureLoaded call; throwing
            // here would surface only as an opaque TypeInitializationException.
        }
    }
#pragma warning restore CA2255
}
