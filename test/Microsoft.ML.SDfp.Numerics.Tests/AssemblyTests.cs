using System.Reflection;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class AssemblyTests
{
    [Fact]
    public void Numerics_assembly_references_no_MLNET_assembly()
    {
        var assembly = typeof(DfpFormat).Assembly;
        Assert.Equal("Microsoft.ML.SDfp.Numerics", assembly.GetName().Name);
        var references = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.Contains("TorchSharp", references);
        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.ML", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_public_type_lives_in_the_documented_namespaces()
    {
        var allowed = new[]
        {
            "Microsoft.ML.SDfp.Numerics", "Microsoft.ML.SDfp.Numerics.Layers",
            "Microsoft.ML.SDfp.Numerics.Telemetry", "Microsoft.ML.SDfp.Numerics.Runtime",
        };
        Assert.All(typeof(DfpFormat).Assembly.GetExportedTypes(), t => Assert.Contains(t.Namespace, allowed));
    }
}

public class NativeMemoryTuningTests
{
    [Fact]
    public void Retaining_freed_memory_takes_effect_on_glibc_linux()
    {
        // The reference machine is Debian (glibc); elsewhere the call must be a harmless no-op.
        var applied = NativeMemoryTuning.RetainFreedMemory();
        Assert.Equal(OperatingSystem.IsLinux() && File.Exists("/lib/x86_64-linux-gnu/libc.so.6"), applied);
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeMemoryTuning.RetainFreedMemory(-1));
    }
}
