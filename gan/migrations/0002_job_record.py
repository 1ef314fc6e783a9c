
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0004_login_names'),
        ('gan', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='samplingrun',
            name='job',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)s', to='core.job'),
        ),
        migrations.AlterField(
            model_name='trainingrun',
            name='job',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)s', to='core.job'),
        ),
    ]
