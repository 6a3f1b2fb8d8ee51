using Microsoft.ML.SDfp.Runtime;
using Xunit;

namespace Microsoft.ML.SDfp.Numerics.Tests.Runtime;

/// <summary>
/// A fact about machines whose libstdc++ predates GCC 13 (Debian 12, these CI machines). It is
/// reported as skipped, not passed, where the system libstdc++ is new enough.
/// </summary>
public sealed class OnOldLibStdCxxFactAttribute : FactAttribute
{
    public static bool SystemLacksGlibcxx3432 { get; } =
        !ElfImage.Load(TorchSharpRuntime.FindLoadedLibStdCxx()).Definitions.Contains("GLIBCXX_3.4.32");

    public OnOldLibStdCxxFactAttribute()
    {
        if (!SystemLacksGlibcxx3432)
            Skip = "this machine's libstdc++ already provides GLIBCXX_3.4.32, so nothing is patched";
    }
}
