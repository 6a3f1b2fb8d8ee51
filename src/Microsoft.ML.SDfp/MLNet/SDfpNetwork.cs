using Microsoft.ML.SDfp.Models;
using Microsoft.ML.SDfp.Numerics;
using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.RoundingMode;

namespace Microsoft.ML.SDfp.MLNet;

/// <summary>
/// A trained ResNet prepared for scoring, with its input normalisation. Shared by a transformer and the views and
/// mappers it creates.
/// </summary>
/// <remarks>
/// <para>Scoring uses the trained number format with two deliberate differences from the training-time forward:</para>
/// <para>1. Weights are quantised once (<see cref="Freeze"/>): each quantised layer's weight is replaced by its grid
/// values q·2^e and the layer no longer re-quantises it. Re-quantising grid values is not idempotent for S-DFP with a
/// positive shift (the largest values saturate again at a lower exponent), so freezing is what makes a saved and
/// reloaded model score bit-identically.</para>
/// <para>2. Activations are quantised per image, not per batch: each image gets its own exponent (as if scored alone),
/// so an image's score never depends on which other rows share its batch. Rounding is nearest-even and the exponent
/// comes from the current tensor, so scoring is deterministic.</para>
/// </remarks>
internal sealed class SDfpNetwork : IDisposable
{
    private readonly object _lock = new();
    private readonly List<Action> _hookRemovers = new();
    private readonly Dictionary<string, QuantizedWeight> _frozen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, float[]> _masterWeights = new(StringComparer.Ordinal);

    public SDfpNetwork(ResNetModel model, ImageInputShape inputShape, float[] mean, float[] std)
    {
        Model = model;
        InputShape = inputShape;
        Mean = mean;
        Std = std;
    }

    public ResNetModel Model { get; }

    public ImageInputShape InputShape { get; }

    public float[] Mean { get; }

    public float[] Std { get; }

    public int ClassCount => Model.Options.NumClasses;

    public int EmbeddingSize => (int)Model.EmbeddingSize;

    /// <summary>Quantised weights kept as integers for persistence, by parameter name ("layer1.0.conv1.weight").</summary>
    public IReadOnlyDictionary<string, QuantizedWeight> FrozenWeights => _frozen;

    /// <summary>
    /// FP32 master weights of the quantised layers as they were before <see cref="Freeze"/>, when it was asked to keep
    /// them (only to measure what integer storage saves against storing the trained model in FP32).
    /// </summary>
    public IReadOnlyDictionary<string, float[]> MasterWeights => _masterWeights;

    /// <summary>The format each layer's weights were trained in, before <see cref="Freeze"/> (policy of the model).</summary>
    public QuantizationPolicy TrainedPolicy => Model.Options.Quantization;

    /// <summary>
    /// Prepares a freshly trained model for scoring: quantise its weights once and switch activations to per-image
    /// quantisation. Pass <paramref name="loadedWeights"/> when the weights were read from a file (they are then the
    /// stored integers, already on the grid).
    /// </summary>
    public void Freeze(IReadOnlyDictionary<string, QuantizedWeight>? loadedWeights = null, bool keepMasterWeights = false)
    {
        Model.eval();
        Model.Telemetry = null;
        using var noGrad = torch.no_grad();
        foreach (var (path, module) in Model.named_modules())
        {
            (QuantizationConfig config, TorchSharp.Modules.Parameter weight, Action<QuantizationConfig> setConfig) layer;
            if (module is QuantizedConv2d conv)
            {
                layer = (conv.Config, conv.weight, c => conv.Config = c);
            }
            else if (module is QuantizedLinear linear)
            {
                layer = (linear.Config, linear.weight, c => linear.Config = c);
            }
            else
            {
                continue;
            }

            string parameterName = path + ".weight";
            if (layer.config.Weight is { } weightFormat)
            {
                if (keepMasterWeights)
                {
                    _masterWeights[parameterName] = layer.weight.detach().contiguous().data<float>().ToArray();
                }

                QuantizedWeight quantized = loadedWeights is not null && loadedWeights.TryGetValue(parameterName, out var stored)
                    ? stored
                    : QuantizedWeight.From(layer.weight, InferenceFormat(weightFormat), path);
                using Tensor gridValues = quantized.ToTensor();
                layer.weight.copy_(gridValues);
                _frozen[parameterName] = quantized;
            }

            if (layer.config.Activation is { } activationFormat)
            {
                DfpFormat perImage = InferenceFormat(activationFormat);
                var hook = ((nn.Module<Tensor, Tensor>)module).register_forward_pre_hook((_, input) => QuantizePerImage(input, perImage, path));
                _hookRemovers.Add(hook.remove);
            }

            // Weights are on the grid already and activations are quantised by the hook; errors need no quantiser in eval.
            layer.setConfig(QuantizationConfig.Fp32);
        }
    }

    /// <summary>
    /// Scores <paramref name="count"/> normalised images (CHW each, contiguous) in one forward pass. Returns softmax
    /// probabilities [count × classes] and/or embeddings [count × EmbeddingSize].
    /// </summary>
    public (float[]? Probabilities, float[]? Embeddings) Forward(float[] images, int count, bool wantProbabilities, bool wantEmbeddings)
    {
        // TorchSharp modules are not safe to call from several threads at once (hooks, dispose scopes); scoring
        // from many cursors or prediction engines serialises here, each call still scores a whole batch.
        lock (_lock)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            Tensor x = torch.tensor(images.AsSpan(0, count * InputShape.Size).ToArray(), new long[] { count, InputShape.Channels, InputShape.Height, InputShape.Width });
            Tensor features = Model.Features(x);
            float[]? embeddings = wantEmbeddings ? features.contiguous().data<float>().ToArray() : null;
            float[]? probabilities = null;
            if (wantProbabilities)
            {
                Tensor logits = Model.Classifier.call(features);
                probabilities = torch.nn.functional.softmax(logits, 1).contiguous().data<float>().ToArray();
            }

            return (probabilities, embeddings);
        }
    }

    /// <summary>Applies the stored per-channel normalisation in place to one image (CHW).</summary>
    public void Normalize(Span<float> image)
    {
        int plane = InputShape.Height * InputShape.Width;
        for (int c = 0; c < InputShape.Channels; c++)
        {
            float mean = Mean[c], std = Std[c];
            Span<float> channel = image.Slice(c * plane, plane);
            for (int i = 0; i < channel.Length; i++)
            {
                channel[i] = (channel[i] - mean) / std;
            }
        }
    }

    /// <summary>The deterministic inference variant of a trained format: nearest-even rounding, current exponent.</summary>
    internal static DfpFormat InferenceFormat(DfpFormat trained) =>
        trained with { Rounding = RoundingMode.NearestEven, ExponentSource = ExponentSource.Current };

    /// <summary>
    /// Fake-quantises each image of the batch with its own exponent. For fixed-shift formats this is one vectorised
    /// pass (per-image amax, exponent from <see cref="Dfp.Exponent"/>, round half to even, clamp); auto shift, which
    /// searches a shift per tensor, goes image by image through a quantiser.
    /// </summary>
    internal static Tensor QuantizePerImage(Tensor input, DfpFormat format, string layer)
    {
        long n = input.shape[0];
        if (format.AutoShift)
        {
            Tensor[] images = input.unbind(0);
            var quantized = new Tensor[n];
            for (int i = 0; i < n; i++)
            {
                quantized[i] = QuantizeOne(images[i], format, layer);
            }

            return torch.stack(quantized, 0);
        }

        using var scope = torch.NewDisposeScope();
        float[] amax = input.detach().abs().reshape(n, -1).amax(1).contiguous().data<float>().ToArray();
        var scales = new float[n];
        for (int i = 0; i < n; i++)
        {
            if (!float.IsFinite(amax[i]))
            {
                // Let the numerics layer report the non-finite values (it names the count).
                return QuantizeOne(input[i], format, layer).MoveToOuterDisposeScope();
            }

            scales[i] = MathF.ScaleB(1f, Dfp.Exponent(amax[i], format, format.Shift));
        }

        long[] shape = new long[input.dim()];
        Array.Fill(shape, 1L);
        shape[0] = n;
        Tensor scale = torch.tensor(scales).reshape(shape);
        // Division and multiplication by a power of two are exact, so q · 2^e is exactly the grid value.
        Tensor q = torch.round(input / scale).clamp((float)format.QMin, (float)format.QMax);
        return (q * scale).MoveToOuterDisposeScope();
    }

    private static Tensor QuantizeOne(Tensor x, DfpFormat format, string layer)
    {
        if (!format.AutoShift)
        {
            return Dfp.FakeQuantize(x, format);
        }

        // Auto shift picks s from the tensor itself; a fresh quantiser per image keeps no state between images.
        using var quantizer = new TensorQuantizer(layer, TensorRole.Activation, format);
        return quantizer.FakeQuantize(x);
    }

    public void Dispose()
    {
        foreach (Action remove in _hookRemovers)
        {
            remove();
        }

        _hookRemovers.Clear();
        Model.Dispose();
    }
}
