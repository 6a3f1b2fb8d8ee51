namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// Declared by the training package: the type whose static <c>FromModelFile(IHostEnvironment, ClassifierModelFile)</c>
/// builds a TorchSharp-scored classifier. The loader looks for it so that models keep scoring on TorchSharp wherever
/// the training package is deployed, and on ONNX Runtime where it is not.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
internal sealed class TorchSharpScoringAttribute(Type factory) : Attribute
{
    public Type Factory { get; } = factory;
}
