using Microsoft.ML.SDfp.Distributed.Exchange;

namespace Microsoft.ML.SDfp.Distributed.Tests;

public sealed class AssemblyTests
{
    [Fact]
    public void Distributed_assembly_references_neither_TorchSharp_nor_MLNET_and_keeps_its_namespaces()
    {
        var assembly = typeof(GradientExchange).Assembly;
        Assert.Equal("Microsoft.ML.SDfp.Distributed", assembly.GetName().Name);
        var references = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.DoesNotContain(references, n => n.StartsWith("TorchSharp", StringComparison.Ordinal) || n.StartsWith("Microsoft.ML", StringComparison.Ordinal));
        Assert.All(assembly.GetExportedTypes(), t => Assert.Contains(t.Namespace, new[] { "Microsoft.ML.SDfp.Distributed.Mpi", "Microsoft.ML.SDfp.Distributed.Exchange" }));
    }
}
