using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Onnx;

/// <summary>
/// Scores a trained network with ONNX Runtime on the graph <see cref="OnnxModelBuilder"/> builds from the stored
/// integers. <see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string})"/>
/// is thread-safe, so one engine serves every cursor and prediction engine.
/// </summary>
internal sealed class OnnxRuntimeEngine : IImageScoringEngine
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    public OnnxRuntimeEngine(IHostEnvironment env, ScoringNetwork network, OnnxGraphKind kind = OnnxGraphKind.Exact)
    {
        Network = network;
        Kind = kind;
        byte[] model = OnnxModelBuilder.Build(env, network, kind);
        // All graph optimisations. On the exact graph they change no result: the identity check on all 10,000
        // Fashion-MNIST test images gives the same figures as with basic optimisations only (README); the CI identity
        // test guards it. They halve the single-row latency.
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };

        // Idle pool threads sleep instead of spinning, as OMP_WAIT_POLICY=PASSIVE does for libtorch: spinning threads
        // starve everything else on a shared machine, and the exact graph's many small nodes idle them often.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        _session = new InferenceSession(model, options);
    }

    public ScoringNetwork Network { get; }

    public OnnxGraphKind Kind { get; }

    public int Channels => Network.Channels;

    public int Height => Network.Height;

    public int Width => Network.Width;

    public int ClassCount => Network.ClassCount;

    public int EmbeddingSize => Network.EmbeddingSize;

    public (float[]? Probabilities, float[]? Embeddings) Score(float[] rgb, int count, bool wantProbabilities, bool wantEmbeddings)
    {
        int size = 3 * Height * Width;
        if (count < 1 || rgb.Length < count * size)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Needs {count} images of {size} floats; got {rgb.Length} floats.");
        }

        var outputs = new List<string>(2);
        if (wantProbabilities)
        {
            outputs.Add(OnnxModelBuilder.ProbabilitiesName);
        }

        if (wantEmbeddings)
        {
            outputs.Add(OnnxModelBuilder.EmbeddingName);
        }

        if (outputs.Count == 0)
        {
            return (null, null);
        }

        using OrtValue input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, rgb.AsMemory(0, count * size),
            new long[] { count, 3, Height, Width });
        using IDisposableReadOnlyCollection<OrtValue> results = _session.Run(_runOptions, [OnnxModelBuilder.InputName], [input], outputs);
        float[]? probabilities = wantProbabilities ? results[0].GetTensorDataAsSpan<float>().ToArray() : null;
        float[]? embeddings = wantEmbeddings ? results[outputs.Count - 1].GetTensorDataAsSpan<float>().ToArray() : null;
        return (probabilities, embeddings);
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }
}
