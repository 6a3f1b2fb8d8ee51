using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class ImageClassifierTrainerEvaluationTests
{
    public ImageClassifierTrainerEvaluationTests() => Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();

    [Fact]
    public void PredictProbabilities_gives_softmax_rows_in_eval_mode_without_gradients_and_restores_the_mode()
    {
        using var scope = NewDisposeScope();
        using var data = TrainingFixtures.RandomData(37, seed: 8);
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());
        model.train();

        var probabilities = ImageClassifierTrainer.PredictProbabilities(model, data.Images, batchSize: 16);

        Assert.Equal(new long[] { 37, 10 }, probabilities.shape);
        Assert.False(probabilities.requires_grad);
        Assert.True(probabilities.sum(1).sub(1).abs().max().item<float>() < 1e-5f);
        Assert.True(model.training, "the model's mode must be restored");
    }

    [Fact]
    public void PredictProbabilities_of_an_fp32_model_does_not_depend_on_the_batch_size()
    {
        using var scope = NewDisposeScope();
        using var data = TrainingFixtures.RandomData(37, seed: 8);
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);

        // Eval mode normalises with running statistics, not batch statistics, so batching is invisible. (A quantised
        // model is different: its activations share one exponent per tensor, i.e. per batch.)
        var batched = ImageClassifierTrainer.PredictProbabilities(model, data.Images, batchSize: 16);
        var whole = ImageClassifierTrainer.PredictProbabilities(model, data.Images, batchSize: 64);

        Assert.True(whole.sub(batched).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Evaluate_matches_the_argmax_of_the_predicted_probabilities()
    {
        using var scope = NewDisposeScope();
        using var data = TrainingFixtures.RandomData(50, seed: 9);
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);

        var (loss, accuracy) = ImageClassifierTrainer.Evaluate(model, data, batchSize: 16);

        var probabilities = ImageClassifierTrainer.PredictProbabilities(model, data.Images);
        var expectedAccuracy = probabilities.argmax(1).eq(data.Labels).to_type(ScalarType.Float64).mean().item<double>();
        var expectedLoss = -probabilities.gather(1, data.Labels.unsqueeze(1)).log().mean().item<float>();
        Assert.Equal(expectedAccuracy, accuracy, 12);
        Assert.Equal(expectedLoss, loss, 4);
    }
}
