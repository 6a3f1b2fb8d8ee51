using System.Reflection;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Runtime;

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
        Assert.Contains("Microsoft.ML.SDfp.Runtime", references);
        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.ML", StringComparison.Ordinal) && !n.StartsWith("Microsoft.ML.SDfp.", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_public_type_lives_in_the_documented_namespaces()
    {
        var allowed = new[]
        {
            "Microsoft.ML.SDfp.Numerics.Formats", "Microsoft.ML.SDfp.Numerics.Quantization",
            "Microsoft.ML.SDfp.Numerics.Layers", "Microsoft.ML.SDfp.Numerics.Telemetry",
        };
        Assert.All(typeof(DfpFormat).Assembly.GetExportedTypes(), t => Assert.Contains(t.Namespace, allowed));
    }

    [Fact]
    public void Runtime_assembly_holds_the_loader_and_references_neither_numerics_nor_MLNET()
    {
        var assembly = typeof(TorchSharpRuntime).Assembly;
        Assert.Equal("Microsoft.ML.SDfp.Runtime", assembly.GetName().Name);
        Assert.All(assembly.GetExportedTypes(), t => Assert.Equal("Microsoft.ML.SDfp.Runtime", t.Namespace));
        var references = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.ML", StringComparison.Ordinal));
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
