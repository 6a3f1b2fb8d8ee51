using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// Base of every ResNet the factory builds: <c>logits = forward(x) = fc(Features(x))</c>, where
/// <see cref="Features"/> is the penultimate embedding (global average pool, flattened).
/// </summary>
/// <remarks>
/// <para>
/// Every conv is a <see cref="QuantizedConv2d"/> and the classifier a <see cref="QuantizedLinear"/>;
/// their <c>LayerName</c> equals their state_dict prefix (e.g. <c>layer1.0.conv1</c>), so telemetry
/// and errors name the layer as a PyTorch user would. Batch norm, residual adds and pooling are FP32.
/// </para>
/// <para>
/// Submodules are registered under torchvision's names (<c>conv1</c>, <c>bn1</c>, <c>layer1</c>…,
/// <c>fc</c>; blocks <c>"0"</c>, <c>"1"</c>…; projections <c>downsample.0</c>/<c>downsample.1</c>), so
/// state_dicts are interchangeable with <c>torchvision.models.resnetNN</c> of the same shape.
/// </para>
/// </remarks>
public abstract class ResNetModel : nn.Module<Tensor, Tensor>
{
    /// <summary>State-dict name of the stem conv.</summary>
    public const string FirstConvName = "conv1";

    /// <summary>State-dict name of the classifier.</summary>
    public const string LastLinearName = "fc";

    private QuantizationTelemetry? _telemetry;

    private protected ResNetModel(string name, ResNetOptions options, long embeddingSize)
        : base(name)
    {
        Options = options;
        EmbeddingSize = embeddingSize;
    }

    /// <summary>The options the model was built with; <see cref="ResNetOptions.Quantization"/> follows <see cref="SetQuantization"/>.</summary>
    public ResNetOptions Options { get; private set; }

    /// <summary>Width of the penultimate embedding returned by <see cref="Features"/> (the classifier's input size).</summary>
    public long EmbeddingSize { get; }

    /// <summary>Number of trainable parameters (batch-norm running statistics excluded).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>The classifier, <c>fc</c>.</summary>
    public abstract QuantizedLinear Classifier { get; }

    /// <summary>The penultimate embedding <c>[N, EmbeddingSize]</c> of images <c>[N, InputChannels, H, W]</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not 4-D float32 with <see cref="ResNetOptions.InputChannels"/> channels.</exception>
    public abstract Tensor Features(Tensor input);

    /// <summary>Logits <c>[N, NumClasses]</c> of images <c>[N, InputChannels, H, W]</c>.</summary>
    public override Tensor forward(Tensor input) => Classifier.call(Features(input));

    /// <summary>
    /// Where quantised layers record statistics. Setting it pushes the instance to every conv and
    /// linear (FP32 layers record nothing); null detaches them.
    /// </summary>
    public QuantizationTelemetry? Telemetry
    {
        get => _telemetry;
        set
        {
            _telemetry = value;
            foreach (var layer in QuantizedLayers)
                layer.Telemetry = value;
        }
    }

    /// <summary>Every conv in state_dict order (<c>conv1</c>, then block by block, each block's projection last).</summary>
    public IEnumerable<QuantizedConv2d> QuantizedConvs => QuantizedLayers.OfType<QuantizedConv2d>();

    /// <summary>Every linear in state_dict order (only the classifier <c>fc</c> in these networks).</summary>
    public IEnumerable<QuantizedLinear> QuantizedLinears => QuantizedLayers.OfType<QuantizedLinear>();

    // TorchSharp's modules() walks breadth-first, which would put projections after all block convs;
    // persistence wants the state_dict's depth-first order, so derive it from the parameter names.

    /// <summary>Every quantised layer (convs and linears) in state_dict order.</summary>
    public IReadOnlyList<IQuantizedLayer> QuantizedLayers => _quantizedLayers ??= FindQuantizedLayers();

    private IReadOnlyList<IQuantizedLayer>? _quantizedLayers;

    private List<IQuantizedLayer> FindQuantizedLayers()
    {
        var byName = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        foreach (var (name, module) in named_modules())
            byName[name] = module;
        var layers = new List<IQuantizedLayer>();
        foreach (var (name, _) in named_parameters())
        {
            const string suffix = ".weight";
            if (!name.EndsWith(suffix, StringComparison.Ordinal))
                continue;
            if (byName.TryGetValue(name[..^suffix.Length], out var module) && module is IQuantizedLayer layer)
                layers.Add(layer);
        }
        return layers;
    }

    /// <summary>
    /// Applies <paramref name="policy"/> to every conv and linear of this existing model (e.g. to
    /// switch an FP32-trained model to S-DFP for evaluation, or back). Weights are untouched.
    /// </summary>
    /// <exception cref="ArgumentException">The policy is invalid; the message names the property.</exception>
    public void SetQuantization(QuantizationPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();
        foreach (var layer in QuantizedLayers)
            layer.Config = policy.ConfigFor(RoleOf(layer.LayerName));
        Options = Options with { Quantization = policy };
    }

    /// <summary>The role of the layer named <paramref name="layerName"/> (its state_dict prefix).</summary>
    public static ResNetLayerRole RoleOf(string layerName) => layerName switch
    {
        FirstConvName => ResNetLayerRole.FirstConv,
        LastLinearName => ResNetLayerRole.LastLinear,
        _ => ResNetLayerRole.Body,
    };

    /// <summary>Rejects inputs the stem conv would fail on with a message that says what was expected.</summary>
    private protected void ValidateInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != Options.InputChannels)
        {
            throw new ArgumentException(
                $"{Options.Architecture} expects input [N, {Options.InputChannels}, H, W]; got [{string.Join(", ", input.shape)}].",
                nameof(input));
        }
        if (input.dtype != ScalarType.Float32)
            throw new ArgumentException($"{Options.Architecture} expects float32 input; got {input.dtype}.", nameof(input));
    }
}
