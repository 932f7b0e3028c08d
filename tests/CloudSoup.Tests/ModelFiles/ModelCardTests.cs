// README.md's front matter and text: Hub repositories recognised from Hugging Face cache paths only, and recipe strings
// that cannot break the card's structure (a newline in a name, backticks in a reference, a fence inside a template).
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.ModelFiles;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.ModelFiles;

public class ModelCardTests
{
    [Theory]
    [InlineData("/root/.cache/huggingface/hub/models--meta-llama--Llama-3.1-8B/snapshots/0e9e39f249a16976918f6564b8830bc894c89659", "meta-llama/Llama-3.1-8B")]
    [InlineData("hub/models--gpt2/snapshots/607a30d783dfa663caf39e06633721c8d4cfcd7e/", "gpt2")]
    [InlineData("checkpoints/models--org--name/snapshots/main/model.safetensors", "org/name")]
    [InlineData("checkpoints/exp/llama-ft", null)]
    [InlineData("meta-llama/Llama-3.1-8B", null)]                 // a blob path or a local folder: nothing says it is the Hub's
    [InlineData("cache/models--a--b--c/snapshots/x", null)]        // not a valid repository id
    public void Hub_ids_come_only_from_hugging_face_cache_paths(string reference, string? id) =>
        Assert.Equal(id, ModelCard.HubId(reference));

    [Fact]
    public void The_front_matter_lists_hub_models_as_a_merge_and_recipe_strings_cannot_break_the_card()
    {
        const string a = "/cache/models--org--base/snapshots/1";
        const string b = "/cache/models--org--tuned/snapshots/2";
        var recipe = RecipeParser.Parse($"name: \"my\\nmodel\"\nmerge_method: task_arithmetic\nbase_model: {a}\nmodels:\n  - {{model: {b}, parameters: {{weight: 1.0}}}}\n  - {{model: \"odd`name/x\", parameters: {{weight: 1.0}}}}\n" +
            "chat_template: \"{% for m in messages %}```{{ m['content'] }}````{% endfor %}\"\n");
        var card = ModelCard.Render(new ModelCard.Input(recipe, MethodCatalog.Get("task_arithmetic"), "job1", HasConfig: true, null, null, null));
        var front = HfFolderCheck.FrontMatter(card);
        Assert.Equal(new[] { "org/tuned", "org/base" }, ((List<object>)front["base_model"]).Cast<string>());   // the models, then the base
        Assert.Equal("merge", front["base_model_relation"]);
        Assert.Contains("\n# my model\n", card);
        Assert.Contains("* `` odd`name/x ``\n", card);
        Assert.Contains("\n`````yaml\n", card);                       // longer than the template's longest backtick run
        Assert.EndsWith("\n`````\n", card);
    }
}
