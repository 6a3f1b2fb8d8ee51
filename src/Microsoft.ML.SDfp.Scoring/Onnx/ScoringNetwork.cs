using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Onnx;

/// <summary>
/// Everything the ONNX graph of a trained S-DFP ResNet is built from, without TorchSharp: the stored state-dict
/// tensors (quantised weights as integers and one exponent), the calibrated static activation exponent and format
/// width of each quantised layer, the input shape and the per-channel normalisation.
/// </summary>
internal sealed class ScoringNetwork
{
    public ScoringNetwork(string architecture, int channels, int height, int width, int classCount, float[] mean, float[] std,
        IReadOnlyList<StoredTensor> tensors, IReadOnlyDictionary<string, int> activationExponents, int activationBits)
    {
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "An S-DFP image classifier takes 1 or 3 input channels.");
        }

        if (mean.Length != channels || std.Length != channels)
        {
            throw new ArgumentException($"The normalisation has {mean.Length} means and {std.Length} deviations for {channels} channels.", nameof(mean));
        }

        if (activationExponents.Count > 0 && activationBits is < 2 or > 16)
        {
            throw new ArgumentOutOfRangeException(nameof(activationBits), activationBits, "Activation formats have 2 to 16 bits.");
        }

        Architecture = architecture;
        Channels = channels;
        Height = height;
        Width = width;
        ClassCount = classCount;
        Mean = mean;
        Std = std;
        Tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        ActivationExponents = activationExponents;
        ActivationBits = activationBits;
    }

    /// <summary>Architecture name, for messages ("ResNet20").</summary>
    public string Architecture { get; }

    public int Channels { get; }

    public int Height { get; }

    public int Width { get; }

    public int ClassCount { get; }

    public float[] Mean { get; }

    public float[] Std { get; }

    /// <summary>State-dict tensors by name ("layer1.0.conv1.weight").</summary>
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>Static activation exponent of each layer whose input is quantised, by module path ("layer1.0.conv1").</summary>
    public IReadOnlyDictionary<string, int> ActivationExponents { get; }

    /// <summary>Bits of the activation format (meaningful when <see cref="ActivationExponents"/> is not empty).</summary>
    public int ActivationBits { get; }

    /// <summary>Length of the embedding (the classifier's input features).</summary>
    public int EmbeddingSize => (int)Tensor("fc.weight").Shape[1];

    public StoredTensor Tensor(string name) => Tensors.TryGetValue(name, out StoredTensor? tensor)
        ? tensor
        : throw new InvalidDataException($"The {Architecture} model has no tensor '{name}'; the model file is corrupt.");
}
