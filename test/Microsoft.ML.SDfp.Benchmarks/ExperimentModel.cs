using Microsoft.ML.SDfp.Training.Models;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The networks <c>fashion-mnist --model</c> trains: the CIFAR-style ResNets of <see cref="CifarResNet"/> (3×3 stem without
/// max-pool, so 28×28 inputs keep their resolution into the first stage), with 1 input channel and 10 classes.
/// Reports record the name (<c>resnet20</c>, ...); reports from before the option have none and read as <see cref="Default"/>.
/// </summary>
internal static class ExperimentModel
{
    public const string Default = "resnet20";

    public static readonly string[] Names = { "resnet20", "resnet32", "resnet56" };

    public static ResNetArchitecture Architecture(string name) => name switch
    {
        "resnet20" => ResNetArchitecture.ResNet20,
        "resnet32" => ResNetArchitecture.ResNet32,
        "resnet56" => ResNetArchitecture.ResNet56,
        _ => throw new ArgumentException($"Unknown model '{name}'; choose from {string.Join(",", Names)}.", nameof(name)),
    };

    /// <summary>The name reports print: "ResNet-20", "ResNet-32", "ResNet-56".</summary>
    public static string DisplayName(string name) => "ResNet-" + name["resnet".Length..];

    /// <summary>A freshly initialised network from TorchSharp's global generator (seed it first for reproducible weights).</summary>
    public static ResNetModel Create(string name, QuantizationPolicy policy) => ResNetFactory.Create(new ResNetOptions
    {
        Architecture = Architecture(name),
        InputChannels = 1,
        NumClasses = 10,
        Quantization = policy,
    });
}
