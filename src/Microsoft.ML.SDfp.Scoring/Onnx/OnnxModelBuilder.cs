using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.SDfp.Onnx;

/// <summary>
/// Builds a standalone ONNX model of a trained network (no ML.NET pipeline around it): input <c>pixels</c>
/// [N, 3, H, W], RGB in [0, 1]; outputs <c>probabilities</c> [N, classes], <c>predicted_label</c> [N] (uint32,
/// 1-based class index) and <c>embedding</c> [N, features].
/// </summary>
internal static class OnnxModelBuilder
{
    /// <summary>Name of the graph input.</summary>
    public const string InputName = "pixels";

    /// <summary>Name of the softmax output.</summary>
    public const string ProbabilitiesName = "probabilities";

    /// <summary>Name of the predicted key output.</summary>
    public const string PredictedLabelName = "predicted_label";

    /// <summary>Name of the embedding output.</summary>
    public const string EmbeddingName = "embedding";

    private const int OpSet = 12;

    /// <summary>The serialised ONNX ModelProto.</summary>
    public static byte[] Build(IHostEnvironment env, ScoringNetwork network, OnnxGraphKind kind)
    {
        var ctx = new OnnxContextImpl(env, "sdfp_" + network.Architecture, "Microsoft.ML.SDfp",
            typeof(OnnxModelBuilder).Assembly.GetName().Version?.ToString() ?? "0", 0, "microsoft.ml.sdfp", OnnxVersion.Stable, OpSet);
        ctx.AddInputVariable(new VectorDataViewType(NumberDataViewType.Single, 3, network.Height, network.Width), InputName);
        var (probabilities, predicted, embedding) = ResNetGraphEmitter.Emit(ctx, network, ctx.GetVariableName(InputName), kind, prefix: string.Empty);
        AddOutput(ctx, probabilities, ProbabilitiesName, new VectorDataViewType(NumberDataViewType.Single, network.ClassCount));
        AddOutput(ctx, predicted, PredictedLabelName, NumberDataViewType.UInt32, dims: []);
        AddOutput(ctx, embedding, EmbeddingName, new VectorDataViewType(NumberDataViewType.Single, network.EmbeddingSize));
        return ctx.MakeModel().ToByteArray();
    }

    // dims: the dimensions after the batch one; null for ML.NET's default (the type's own).
    private static void AddOutput(OnnxContextImpl ctx, string variable, string name, DataViewType type, List<long>? dims = null)
    {
        string output = ctx.AddIntermediateVariable(type, name);
        if (output != variable)
        {
            ctx.CreateNode("Identity", variable, output, ctx.GetNodeName("Identity"), string.Empty);
        }

        ctx.AddOutputVariable(type, output, dims);
    }
}
