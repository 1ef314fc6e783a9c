
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('turing', '0002_item_images'),
    ]

    operations = [
        migrations.AddField(
            model_name='study',
            name='alpha',
            field=models.FloatField(default=0.05, help_text="significance level of the verdict's tests"),
        ),
        migrations.AddField(
            model_name='study',
            name='equivalence_margin',
            field=models.FloatField(default=0.1, help_text="delta: 'indistinguishable' means the mean AUC is within 0.5 +- delta"),
        ),
    ]
