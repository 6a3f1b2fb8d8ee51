using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

/// <summary>
/// Tests that compare two runs bit for bit. Model initialisation draws from torch's process-wide
/// generator (TorchSharp's init functions take no generator), so another test class creating a
/// model in parallel would change the weights between the two runs; these run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalGeneratorCollection
{
    public const string Name = "torch global generator";
}
